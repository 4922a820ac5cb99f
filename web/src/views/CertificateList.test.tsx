// The list against an in-memory InventoryService (connect's router transport):
// checks that URL filters reach the request and that "/" focuses search.
import { describe, expect, it, vi } from "vitest";
import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import {
  CertificateSchema,
  CertificateState,
  InventoryService,
  type ListCertificatesRequest,
} from "../gen/certctl/inventory/v1/inventory_pb";

const seen: ListCertificatesRequest[] = [];

vi.mock("../api/client", () => {
  const transport = createRouterTransport(({ service }) => {
    service(InventoryService, {
      listCertificates(req) {
        seen.push(req);
        const certificates = Array.from({ length: 3 }, (_, i) =>
          create(CertificateSchema, {
            name: `certificates/c${i}`,
            commonName: `c${i}.example.com`,
            state: CertificateState.ACTIVE,
            owner: "owners/alice",
            notAfter: timestampFromDate(new Date(Date.now() + (i + 1) * 10 * 86_400_000)),
          }),
        );
        return { certificates, nextPageToken: "page2" };
      },
      listOwners: () => ({ owners: [{ name: "owners/alice", displayName: "Alice" }] }),
      listTeams: () => ({ teams: [] }),
    });
  });
  return { inventory: createClient(InventoryService, transport), audit: {} };
});

const { CertificateList } = await import("./CertificateList");

function renderAt(url: string) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[url]}>
        <CertificateList />
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

describe("<CertificateList>", () => {
  it("sends the URL's filters and shows rows with owner names", async () => {
    renderAt("/certificates?owner=alice&state=expiring&q=api&expire_before=2030-01-01&order_by=name");
    await screen.findByText("c0.example.com");
    const req = seen.at(-1)!;
    expect(req.owner).toBe("owners/alice");
    expect(req.state).toBe(CertificateState.EXPIRING);
    expect(req.search).toBe("api");
    expect(req.orderBy).toBe("name");
    expect(timestampDate(req.expireBefore!).getFullYear()).toBe(2030);
    expect(req.pageToken).toBe("");
    await waitFor(() => expect(screen.getAllByText("Alice").length).toBeGreaterThan(0));
    expect(screen.getByText("in 10 days").className).toContain("warning");
  });

  it("pages forward with the server's token and back", async () => {
    renderAt("/certificates");
    await screen.findByText("c0.example.com");
    await userEvent.click(screen.getByRole("button", { name: /Next/ }));
    await waitFor(() => expect(seen.at(-1)!.pageToken).toBe("page2"));
    await screen.findByText(/Page 2/);
    await userEvent.click(screen.getByRole("button", { name: /Previous/ }));
    await screen.findByText(/Page 1/);
  });

  it("focuses search on '/' and shows the bulk bar when rows are selected", async () => {
    renderAt("/certificates");
    await screen.findByText("c0.example.com");
    const user = userEvent.setup();
    await user.keyboard("/");
    expect(document.activeElement).toBe(screen.getByLabelText("Search"));
    (document.activeElement as HTMLElement).blur();
    await user.click(screen.getByLabelText("Select certificates/c0"));
    await user.keyboard("{Shift>}");
    await user.click(screen.getByLabelText("Select certificates/c2"));
    await user.keyboard("{/Shift}");
    expect(screen.getByText("3 selected")).toBeTruthy();
    expect(screen.getByRole("button", { name: /Change owner/ })).toBeTruthy();
  });

  it("moves between rows with arrow keys and selects with x", async () => {
    renderAt("/certificates");
    await screen.findByText("c0.example.com");
    const user = userEvent.setup();
    screen.getByRole("link", { name: "c0" }).focus();
    await user.keyboard("{ArrowDown}");
    expect(document.activeElement).toBe(screen.getByRole("link", { name: "c1" }));
    await user.keyboard("x");
    expect(screen.getByText("1 selected")).toBeTruthy();
    expect((screen.getByLabelText("Select certificates/c1") as HTMLInputElement).checked).toBe(true);
    await user.keyboard("k");
    expect(document.activeElement).toBe(screen.getByRole("link", { name: "c0" }));
  });
});
