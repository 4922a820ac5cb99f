// The fleet against an in-memory InventoryService and IssuanceService: the
// status filter reaches ListAgents, "Add an agent" shows the one-time secret
// in the enrol command with the platform CA fingerprint, the API's violations
// land under the field they name, and Retire says what it does before it acts.
import { describe, expect, it, vi } from "vitest";
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  AgentSchema,
  AgentStatus,
  InventoryService,
  JoinTokenSchema,
  type CreateJoinTokenRequest,
  type ListAgentsRequest,
} from "../gen/certctl/inventory/v1/inventory_pb";
import { IssuanceService } from "../gen/certctl/issuance/v1/issuance_pb";
import { AuditService } from "../gen/certctl/audit/v1/audit_pb";

const listed: ListAgentsRequest[] = [];
const created: CreateJoinTokenRequest[] = [];
const retired: string[] = [];
const ROOT_FP = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

function badRequest(field: string, description: string): Uint8Array {
  const w = new BinaryWriter();
  w.uint32((1 << 3) | 2).fork();
  w.uint32((1 << 3) | 2).string(field);
  w.uint32((2 << 3) | 2).string(description);
  w.join();
  return w.finish();
}

const web01 = () =>
  create(AgentSchema, {
    name: "agents/web-01",
    displayName: "web-01",
    hostname: "web-01.internal",
    version: "0.4.0",
    capabilities: ["file", "nginx"],
    status: AgentStatus.OFFLINE,
    lastSeenTime: timestampFromDate(new Date(Date.now() - 3.5 * 60_000)),
    hub: "gw-1/10.0.0.5:8444",
    identitySerial: "0A1B",
    identityExpireTime: timestampFromDate(new Date(Date.now() + 20 * 86_400_000)),
  });

vi.mock("../api/client", () => {
  const transport = createRouterTransport(({ service }) => {
    service(InventoryService, {
      listAgents(req) {
        listed.push(req);
        return {
          agents: [web01(), create(AgentSchema, { name: "agents/db-01", hostname: "db-01.internal", status: AgentStatus.ONLINE, lastSeenTime: timestampFromDate(new Date()) })],
          nextPageToken: "p2",
        };
      },
      getAgent: () => ({ agent: web01() }),
      listTargets: (req) => {
        expect(req.agent).toBe("agents/web-01");
        return {
          targets: [
            { name: "targets/site", displayName: "site nginx", agent: "agents/web-01", config: { case: "nginx", value: { certificatePath: "/etc/nginx/tls/site.pem" } } },
            { name: "targets/lb", agent: "agents/web-01", config: { case: "haproxy", value: { certificatePath: "/etc/haproxy/site.pem" } } },
          ],
        };
      },
      retireAgent(req) {
        retired.push(req.name);
        return { agent: { ...web01(), status: AgentStatus.RETIRED, retireTime: timestampFromDate(new Date()) } };
      },
      listJoinTokens: () => ({
        joinTokens: [
          create(JoinTokenSchema, { name: "joinTokens/used1", agent: "agents/web-01", redeemTime: timestampFromDate(new Date(Date.now() - 60_000)), expireTime: timestampFromDate(new Date(Date.now() + 3_600_000)) }),
          create(JoinTokenSchema, { name: "joinTokens/old1", expireTime: timestampFromDate(new Date(Date.now() - 3_600_000)) }),
          create(JoinTokenSchema, { name: "joinTokens/new1", agentId: "web-02", expireTime: timestampFromDate(new Date(Date.now() + 3_600_000)) }),
        ],
      }),
      createJoinToken(req) {
        created.push(req);
        if (req.joinToken?.agentId === "Bad_ID") {
          throw new ConnectError("join_token.agent_id: not a valid id", Code.InvalidArgument, undefined, [
            { type: "google.rpc.BadRequest", value: badRequest("join_token.agent_id", "lower-case letters, digits, - and . only") } as never,
          ]);
        }
        return {
          joinToken: { name: "joinTokens/t1", agentId: req.joinToken?.agentId ?? "", expireTime: timestampFromDate(new Date(Date.now() + 3_600_000)) },
          secret: "cjt_SECRET42",
        };
      },
    });
    service(IssuanceService, {
      listAuthorities(req) {
        expect(req.parent).toBe("issuers/platform");
        return {
          authorities: [
            { name: "issuers/platform/authorities/root", role: "root", sha256Fingerprint: ROOT_FP.toUpperCase() },
            { name: "issuers/platform/authorities/intermediate", role: "intermediate", sha256Fingerprint: "ff".repeat(32) },
          ],
        };
      },
    });
    service(AuditService, { listAuditEvents: () => ({ auditEvents: [] }) });
  });
  return {
    inventory: createClient(InventoryService, transport),
    issuance: createClient(IssuanceService, transport),
    audit: createClient(AuditService, transport),
    scheduler: {},
  };
});

const { AgentsView, AgentDetail } = await import("./Agents");
const { ToastProvider } = await import("../components/Toasts");

function renderAt(url: string) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[url]}>
        <ToastProvider>
          <Routes>
            <Route path="/agents" element={<AgentsView />} />
            <Route path="/agents/:id" element={<AgentDetail />} />
          </Routes>
        </ToastProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

describe("<AgentsView>", () => {
  it("sends the URL's status filter and shows status, host, version, target types and last seen", async () => {
    renderAt("/agents?status=offline");
    const row = (await screen.findByText("web-01.internal")).closest("tr")!;
    expect(listed[0]).toMatchObject({ status: AgentStatus.OFFLINE, pageToken: "", pageSize: 50 });
    expect((screen.getByLabelText("Status") as HTMLSelectElement).value).toBe("offline");
    expect(within(row).getByText("Offline").closest(".badge")!.className).toContain("crit");
    expect(within(row).getByText("0.4.0")).toBeTruthy();
    expect(within(row).getByText("nginx")).toBeTruthy();
    expect(within(row).getByText("3 minutes ago")).toBeTruthy();
    expect(within(row).getByText("gw-1/10.0.0.5:8444")).toBeTruthy();
    const other = screen.getByText("db-01.internal").closest("tr")!;
    expect(within(other).getByText("Online").closest(".badge")!.className).toContain("live");
    expect(within(other).getByText("no identity")).toBeTruthy();

    // Next page carries the server's token.
    await userEvent.click(within(screen.getByRole("region", { name: "Agents" })).getByRole("button", { name: /Next/ }));
    await waitFor(() => expect(listed.at(-1)!.pageToken).toBe("p2"));

    // Join tokens: used, expired, unused.
    const tokens = screen.getByRole("region", { name: "Join tokens" });
    await within(tokens).findByText("used1");
    expect(within(tokens).getByText("used1").closest("tr")!.querySelector("[data-token-state=used]")).toBeTruthy();
    expect(within(tokens).getByText("old1").closest("tr")!.querySelector("[data-token-state=expired]")).toBeTruthy();
    expect(within(tokens).getByText("new1").closest("tr")!.querySelector("[data-token-state=unused]")).toBeTruthy();
    expect(within(tokens).getByRole("button", { name: "Revoke joinTokens/new1" })).toBeTruthy();
    expect(within(tokens).getByRole("button", { name: "Remove joinTokens/used1" })).toBeTruthy();
  });

  it("creates a join token and shows the secret once, in the enrol command with the platform CA fingerprint", async () => {
    renderAt("/agents");
    await screen.findByText("web-01.internal");
    await userEvent.click(screen.getAllByRole("button", { name: /Add an agent/ })[0]!);
    const dialog = screen.getByRole("dialog");

    // A TTL out of range is caught before the request.
    const ttl = within(dialog).getByLabelText(/Valid for/);
    await userEvent.clear(ttl);
    await userEvent.type(ttl, "1000");
    await userEvent.click(within(dialog).getByRole("button", { name: "Create join token" }));
    expect(within(dialog).getByText(/Between 1 and 720/)).toBeTruthy();
    expect(created).toHaveLength(0);

    // The server's violation appears under the field it names.
    await userEvent.clear(ttl);
    await userEvent.type(ttl, "48");
    await userEvent.type(within(dialog).getByLabelText("Agent ID"), "Bad_ID");
    await userEvent.click(within(dialog).getByRole("button", { name: "Create join token" }));
    await within(dialog).findByText("lower-case letters, digits, - and . only");
    expect(within(dialog).getByLabelText("Agent ID").getAttribute("aria-invalid")).toBe("true");

    const id = within(dialog).getByLabelText("Agent ID");
    await userEvent.clear(id);
    await userEvent.type(id, "web-02");
    await userEvent.type(within(dialog).getByLabelText("Labels"), "env=prod");
    await userEvent.click(within(dialog).getByRole("button", { name: "Create join token" }));

    await within(dialog).findByText(/Shown once/);
    const req = created.at(-1)!;
    expect(req.joinToken).toMatchObject({ agentId: "web-02", labels: { env: "prod" } });
    expect(req.joinToken?.ttl?.seconds).toBe(48n * 3600n);
    expect(within(dialog).getByTestId("join-token-secret").textContent).toContain("cjt_SECRET42");
    const command = within(dialog).getByTestId("enroll-command");
    await waitFor(() => expect(command.textContent).toContain(ROOT_FP));
    expect(command.textContent).toBe(`certctl-agent enroll --server https://localhost:8444 --ca-fingerprint ${ROOT_FP} --token cjt_SECRET42`);
    expect(within(dialog).getByRole("button", { name: "Copy enroll command" })).toBeTruthy();

    // The agent server URL is editable and the command follows it.
    const server = within(dialog).getByLabelText("Agent server URL");
    await userEvent.clear(server);
    await userEvent.type(server, "https://certctl.example.com:9444");
    expect(command.textContent).toContain("--server https://certctl.example.com:9444 ");

    // Closing forgets the secret.
    await userEvent.click(within(dialog).getByRole("button", { name: /I have copied it/ }));
    expect(screen.queryByText("cjt_SECRET42")).toBeNull();
  });
});

describe("<AgentDetail>", () => {
  it("shows the identity and targets, and retires only after naming the consequence", async () => {
    renderAt("/agents/web-01");
    await screen.findByRole("heading", { name: "web-01" });
    expect(screen.getByTestId("identity-expiry").textContent).toContain("in 20 days");
    await screen.findByText("site");
    // haproxy is not among the agent's target types.
    expect(screen.getByText("lb").closest("tr")!.textContent).toContain("not supported by this agent");
    expect(screen.getByText("site").closest("tr")!.textContent).not.toContain("not supported");

    await userEvent.click(screen.getByRole("button", { name: /Retire/ }));
    const dialog = screen.getByRole("dialog");
    expect(dialog.textContent).toMatch(/its identity is refused from now on/i);
    expect(retired).toEqual([]);
    await userEvent.click(within(dialog).getByRole("button", { name: "Retire agent" }));
    await waitFor(() => expect(retired).toEqual(["agents/web-01"]));
  });
});
