import { describe, expect, it } from "vitest";
import { JobKind, JobState } from "../gen/certctl/scheduler/v1/scheduler_pb";
import {
  countLabel,
  emptyJobFilters,
  isOpenJob,
  isRetryable,
  jobFiltersFromParams,
  jobFiltersToParams,
  jobFiltersToRequest,
  jobProgress,
  jobStateLabel,
} from "./jobs";

describe("job filters in the URL", () => {
  it("round-trips state, kind and certificate", () => {
    const f = { state: JobState.FAILED, kind: JobKind.RENEWAL, certificate: "web" };
    const p = jobFiltersToParams(f);
    expect(p.toString()).toBe("state=failed&kind=renewal&certificate=web");
    expect(jobFiltersFromParams(p)).toEqual(f);
  });
  it("ignores unknown values and writes nothing for defaults", () => {
    expect(jobFiltersFromParams(new URLSearchParams("state=bogus&kind=nope"))).toEqual(emptyJobFilters);
    expect(jobFiltersToParams(emptyJobFilters).toString()).toBe("");
  });
  it("accepts a full certificate name and sends one", () => {
    const f = jobFiltersFromParams(new URLSearchParams("certificate=certificates%2Fapi&state=awaiting-agent"));
    expect(f.certificate).toBe("api");
    expect(f.state).toBe(JobState.AWAITING_AGENT);
    expect(jobFiltersToRequest(f)).toEqual({ state: JobState.AWAITING_AGENT, kind: JobKind.UNSPECIFIED, certificate: "certificates/api" });
    expect(jobFiltersToRequest(emptyJobFilters).certificate).toBe("");
  });
});

describe("job states", () => {
  it("knows which jobs are open and which can be retried", () => {
    expect([JobState.PENDING, JobState.RUNNING, JobState.AWAITING_AGENT].every(isOpenJob)).toBe(true);
    expect([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED].some(isOpenJob)).toBe(false);
    expect(isRetryable(JobState.FAILED)).toBe(true);
    expect(isRetryable(JobState.CANCELLED)).toBe(true);
    expect(isRetryable(JobState.SUCCEEDED)).toBe(false);
    expect(isRetryable(JobState.RUNNING)).toBe(false);
  });
  it("progress only moves forward and finishes at 1", () => {
    const order = [JobState.PENDING, JobState.RUNNING, JobState.AWAITING_AGENT, JobState.SUCCEEDED].map(jobProgress);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(jobProgress(JobState.FAILED)).toBe(1);
    expect(jobStateLabel(JobState.AWAITING_AGENT)).toBe("Awaiting agent");
  });
  it("counts a first page as ≥N when the server has more", () => {
    expect(countLabel(50, true)).toBe("≥50");
    expect(countLabel(3, false)).toBe("3");
    expect(countLabel(0, false)).toBe("0");
  });
});
