// The job queue against an in-memory SchedulerService: URL filters reach
// ListJobs, WatchJobs changes a row on screen, and Retry asks before it acts.
import { describe, expect, it } from "vitest";
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { vi } from "vitest";
import { JobKind, JobSchema, JobState, SchedulerService, type ListJobsRequest } from "../gen/certctl/scheduler/v1/scheduler_pb";

const listed: ListJobsRequest[] = [];
const retried: string[] = [];
let release: () => void = () => {};

function job(name: string, state: JobState, seconds = 0) {
  return create(JobSchema, {
    name,
    state,
    kind: JobKind.RENEWAL,
    certificate: "certificates/web",
    attempts: 1,
    maxAttempts: 5,
    updateTime: timestampFromDate(new Date(Date.now() + seconds * 1000)),
    error: state === JobState.FAILED ? { code: "ISSUER_UNAVAILABLE", message: "issuers/local did not answer" } : undefined,
  });
}

vi.mock("../api/client", () => {
  const transport = createRouterTransport(({ service }) => {
    service(SchedulerService, {
      listJobs(req) {
        listed.push(req);
        return { jobs: [job("jobs/run1", JobState.RUNNING), job("jobs/bad1", JobState.FAILED)], nextPageToken: "" };
      },
      async *watchJobs(req) {
        expect(req.names).toEqual(["jobs/run1"]);
        yield { job: job("jobs/run1", JobState.RUNNING, 1) };
        await new Promise<void>((r) => (release = r));
        yield { job: job("jobs/run1", JobState.SUCCEEDED, 2) };
      },
      retryJob(req) {
        retried.push(req.name);
        return { job: job(req.name, JobState.PENDING, 3) };
      },
    });
  });
  return { scheduler: createClient(SchedulerService, transport), inventory: {}, audit: {}, issuance: {} };
});

const { JobsView } = await import("./Jobs");
const { ToastProvider } = await import("../components/Toasts");

function renderAt(url: string) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[url]}>
        <ToastProvider>
          <JobsView />
        </ToastProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

describe("<JobsView>", () => {
  it("sends the URL's filters, follows the watch stream, and confirms a retry", async () => {
    renderAt("/jobs?state=running&kind=renewal&certificate=web");
    await screen.findByText("run1");
    expect(listed[0]).toMatchObject({ state: JobState.RUNNING, kind: JobKind.RENEWAL, certificate: "certificates/web", pageToken: "" });
    expect((screen.getByLabelText("State") as HTMLSelectElement).value).toBe("running");

    const row = () => screen.getByText("run1").closest("tr")!;
    expect(within(row()).getByText("Running")).toBeTruthy();
    await screen.findByText("Live");
    release();
    await waitFor(() => expect(within(row()).getByText("Succeeded")).toBeTruthy());

    // The failed job shows its error code and offers Retry, which asks first.
    const bad = screen.getByText("bad1").closest("tr")!;
    expect(within(bad).getByText("ISSUER_UNAVAILABLE")).toBeTruthy();
    await userEvent.click(within(bad).getByRole("button", { name: "Retry jobs/bad1" }));
    expect(retried).toEqual([]);
    await userEvent.click(screen.getByRole("button", { name: "Retry job" }));
    await waitFor(() => expect(retried).toEqual(["jobs/bad1"]));
  });
});
