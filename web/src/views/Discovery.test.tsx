// Discovery triage against an in-memory InventoryService: NEW by default,
// Claim shows the API's violations under the field, a selection is dismissed
// with progress, and a server without the RPC says so.
import { describe, expect, it, vi } from "vitest";
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  DiscoveredCertificateSchema,
  DiscoveryState,
  InventoryService,
  type ClaimDiscoveredCertificateRequest,
  type ListDiscoveredCertificatesRequest,
} from "../gen/certctl/inventory/v1/inventory_pb";

const listed: ListDiscoveredCertificatesRequest[] = [];
const claimed: ClaimDiscoveredCertificateRequest[] = [];
const dismissed: string[] = [];
let served = true;

function badRequest(field: string, description: string): Uint8Array {
  const w = new BinaryWriter();
  w.uint32((1 << 3) | 2).fork();
  w.uint32((1 << 3) | 2).string(field);
  w.uint32((2 << 3) | 2).string(description);
  w.join();
  return w.finish();
}

function found(id: string, cn: string, state = DiscoveryState.NEW, days = 12) {
  return create(DiscoveredCertificateSchema, {
    name: `discoveredCertificates/${id}`,
    fingerprint: id.repeat(8),
    subject: `CN=${cn},O=Example`,
    dnsNames: [cn, `www.${cn}`, `api.${cn}`, `old.${cn}`],
    issuer: "CN=Example Issuing CA,O=Example",
    serialNumber: "0F",
    notAfter: timestampFromDate(new Date(Date.now() + days * 86_400_000 + 3_600_000)),
    locations: [
      { agent: "agents/web-01", path: `/etc/ssl/${cn}.pem` },
      { agent: "agents/web-02", path: `/etc/ssl/${cn}.pem` },
      { agent: "agents/web-03", path: `/srv/${cn}.pem` },
    ],
    state,
    lastSeenTime: timestampFromDate(new Date(Date.now() - 120_000)),
  });
}

vi.mock("../api/client", () => {
  const transport = createRouterTransport(({ service }) => {
    service(InventoryService, {
      listDiscoveredCertificates(req) {
        if (!served) throw new ConnectError("ListDiscoveredCertificates is not built yet", Code.Unimplemented);
        listed.push(req);
        const all = [found("aa", "a.example.com"), found("bb", "b.example.com", DiscoveryState.NEW, 3), found("cc", "c.example.com"), found("dd", "d.example.com", DiscoveryState.DISMISSED)];
        return { discoveredCertificates: all.filter((d) => req.state === DiscoveryState.UNSPECIFIED || d.state === req.state) };
      },
      claimDiscoveredCertificate(req) {
        claimed.push(req);
        if (req.certificateId === "Web!") {
          throw new ConnectError("certificate_id is not a valid id", Code.InvalidArgument, undefined, [
            { type: "google.rpc.BadRequest", value: badRequest("certificate_id", "lower-case letters, digits, - and . only") } as never,
          ]);
        }
        return { discoveredCertificate: { ...found("aa", "a.example.com", DiscoveryState.CLAIMED), certificate: `certificates/${req.certificateId || "a.example.com"}` } };
      },
      dismissDiscoveredCertificate(req) {
        dismissed.push(req.name);
        return { discoveredCertificate: { name: req.name, state: DiscoveryState.DISMISSED } };
      },
      listOwners: () => ({ owners: [{ name: "owners/alice", displayName: "Alice" }] }),
      listTeams: () => ({ teams: [{ name: "teams/platform", displayName: "Platform" }] }),
    });
  });
  return { inventory: createClient(InventoryService, transport), audit: {}, issuance: {}, scheduler: {} };
});

const { DiscoveryView } = await import("./Discovery");
const { ToastProvider } = await import("../components/Toasts");

/** The table row of discoveredCertificates/{id}, once listed. */
async function rowOf(id: string): Promise<HTMLTableRowElement> {
  return waitFor(() => {
    const r = document.querySelector<HTMLTableRowElement>(`tr[data-discovered="discoveredCertificates/${id}"]`);
    if (!r) throw new Error(`no row for ${id}`);
    return r;
  });
}

function renderAt(url: string) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[url]}>
        <ToastProvider>
          <DiscoveryView />
        </ToastProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

describe("<DiscoveryView>", () => {
  it("lists NEW by default with subject, DNS names, issuer, expiry and agent:path locations", async () => {
    renderAt("/discovery");
    const row = await rowOf("aa");
    expect(listed[0]).toMatchObject({ state: DiscoveryState.NEW, pageToken: "" });
    expect((screen.getByLabelText("State") as HTMLSelectElement).value).toBe("new");
    expect(row.textContent).toContain("Example Issuing CA");
    expect(row.textContent).toContain("+1");
    // Long paths keep their file name on screen, and show in full on hover.
    expect(row.textContent).toContain("web-01:…/a.example.com.pem");
    expect(row.querySelector(".locations")!.getAttribute("title")).toContain("web-01:/etc/ssl/a.example.com.pem\nweb-02:/etc/ssl/a.example.com.pem");
    expect(row.textContent).toContain("+1 more");
    expect(within(row).getByText("in 12 days").className).toContain("warning");
    expect((await rowOf("bb")).textContent).toContain("in 3 days");
    expect(document.querySelector('tr[data-discovered="discoveredCertificates/dd"]')).toBeNull();
  });

  it("claims with owner and team, showing the API's violation under the field", async () => {
    renderAt("/discovery");
    await rowOf("aa");
    await userEvent.click(screen.getByRole("button", { name: "Claim discoveredCertificates/aa" }));
    const dialog = screen.getByRole("dialog");
    await userEvent.type(within(dialog).getByLabelText("Certificate ID"), "Web!");
    await waitFor(() => expect(within(dialog).getAllByRole("option", { name: "Alice" }).length).toBe(1));
    await userEvent.selectOptions(within(dialog).getByLabelText("Owner"), "owners/alice");
    await userEvent.selectOptions(within(dialog).getByLabelText("Team"), "teams/platform");
    await userEvent.click(within(dialog).getByRole("button", { name: "Claim certificate" }));
    await within(dialog).findByText("lower-case letters, digits, - and . only");
    expect(within(dialog).getByLabelText("Certificate ID").getAttribute("aria-invalid")).toBe("true");
    expect(within(dialog).getByRole("alert").textContent).toContain("certificate_id is not a valid id");

    const id = within(dialog).getByLabelText("Certificate ID");
    await userEvent.clear(id);
    await userEvent.type(id, "web");
    await userEvent.click(within(dialog).getByRole("button", { name: "Claim certificate" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(claimed.at(-1)).toMatchObject({ name: "discoveredCertificates/aa", certificateId: "web", owner: "owners/alice", team: "teams/platform" });
    await screen.findByText(/Claimed a\.example\.com as certificates\/web/);
  });

  it("dismisses a shift-click selection after confirming, with progress", async () => {
    renderAt("/discovery");
    await rowOf("aa");
    const user = userEvent.setup();
    await user.click(screen.getByLabelText("Select discoveredCertificates/aa"));
    await user.keyboard("{Shift>}");
    await user.click(screen.getByLabelText("Select discoveredCertificates/cc"));
    await user.keyboard("{/Shift}");
    const bar = screen.getByRole("region", { name: "Bulk actions" });
    expect(bar.textContent).toContain("3 selected");
    await userEvent.click(within(bar).getByRole("button", { name: /Dismiss 3/ }));
    expect(dismissed).toEqual([]);
    await userEvent.click(within(screen.getByRole("dialog")).getByRole("button", { name: "Dismiss 3" }));
    await waitFor(() => expect(dismissed).toEqual(["discoveredCertificates/aa", "discoveredCertificates/bb", "discoveredCertificates/cc"]));
    await screen.findByText("Dismissed 3 discovered certificates");
  });

  it("lists another state from the URL, and says when the server does not serve discovery", async () => {
    renderAt("/discovery?state=all");
    const dd = await rowOf("dd");
    expect(listed.at(-1)!.state).toBe(DiscoveryState.UNSPECIFIED);
    expect(dd.querySelector("[data-discovery-state=dismissed]")).toBeTruthy();
    expect(screen.getByLabelText("Select discoveredCertificates/dd")).toHaveProperty("disabled", true);

    served = false;
    renderAt("/discovery");
    await screen.findByText("Discovery is not served by this server yet");
    expect(screen.getByText("ListDiscoveredCertificates is not built yet")).toBeTruthy();
    served = true;
  });
});
