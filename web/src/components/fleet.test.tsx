// Status badges for agents, deployments and discoveries, and the certificate
// detail's Deployments panel against an in-memory InventoryService.
import { describe, expect, it, vi } from "vitest";
import { render, screen, waitFor, within } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  AgentStatus,
  CertificateSchema,
  DeploymentSchema,
  DeploymentState,
  DiscoveryState,
  InventoryService,
  type ListDeploymentsRequest,
} from "../gen/certctl/inventory/v1/inventory_pb";
import { AGENT_STATUS_STYLE, AgentStatusBadge, DEPLOYMENT_STATE_STYLE, DeploymentStateBadge, DiscoveryStateBadge } from "./fleetBadges";

const listed: ListDeploymentsRequest[] = [];
const FP = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

vi.mock("../api/client", () => {
  const transport = createRouterTransport(({ service }) => {
    service(InventoryService, {
      listDeployments(req) {
        listed.push(req);
        if (req.parent === "certificates/old-server") throw new ConnectError("ListDeployments is not built yet", Code.Unimplemented);
        const at = timestampFromDate(new Date(Date.now() - 3_600_000));
        return {
          deployments: [
            create(DeploymentSchema, {
              name: "certificates/web/deployments/site",
              target: "targets/site",
              version: "certificates/web/versions/2",
              state: DeploymentState.VERIFIED,
              servedFingerprint: FP,
              deployTime: at,
              verifyTime: at,
              updateTime: at,
              job: "jobs/0192abcd-ef01-7abc-8def-0123456789ab",
            }),
            create(DeploymentSchema, {
              name: "certificates/web/deployments/lb",
              target: "targets/lb",
              version: "certificates/web/versions/1",
              state: DeploymentState.MISMATCH,
              servedFingerprint: "00".repeat(32),
              message: "the endpoint serves another certificate",
              updateTime: at,
            }),
          ],
        };
      },
      listTargets: () => ({ targets: [{ name: "targets/site", displayName: "Site nginx" }, { name: "targets/lb", displayName: "Load balancer" }] }),
    });
  });
  return { inventory: createClient(InventoryService, transport), audit: {}, issuance: {}, scheduler: {} };
});

const { CertificateDeployments } = await import("./Deployments");

function renderPanel(name: string, targets: string[]) {
  const cert = create(CertificateSchema, { name, currentVersion: `${name}/versions/2`, sha256Fingerprint: FP, targets });
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter>
        <CertificateDeployments cert={cert} />
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

describe("status badges", () => {
  it("give every agent status a word, a tone and an icon", () => {
    const { container, rerender } = render(<AgentStatusBadge status={AgentStatus.ONLINE} />);
    expect(screen.getByText("Online")).toBeTruthy();
    expect(container.querySelector(".badge.ok.live svg")).toBeTruthy();
    rerender(<AgentStatusBadge status={AgentStatus.STALE} />);
    expect(container.querySelector(".badge.warn")!.textContent).toBe("Stale");
    rerender(<AgentStatusBadge status={AgentStatus.OFFLINE} />);
    expect(container.querySelector(".badge.crit")!.textContent).toBe("Offline");
    rerender(<AgentStatusBadge status={AgentStatus.RETIRED} />);
    expect(container.querySelector(".badge.neutral")!.textContent).toBe("Retired");
    expect(container.querySelector(".badge")!.getAttribute("title")).toMatch(/identity is refused/);
    // No two statuses share a colour and an icon.
    const styles = Object.values(AGENT_STATUS_STYLE).map((s) => `${s.tone}/${s.icon}`);
    expect(new Set(styles).size).toBe(styles.length);
  });
  it("name deployment and discovery states", () => {
    const { container, rerender } = render(<DeploymentStateBadge state={DeploymentState.MISMATCH} />);
    expect(container.querySelector(".badge.warn")!.textContent).toBe("Mismatch");
    rerender(<DeploymentStateBadge state={DeploymentState.VERIFIED} />);
    expect(container.querySelector(".badge.ok")!.textContent).toBe("Verified");
    rerender(<DiscoveryStateBadge state={DiscoveryState.NEW} />);
    expect(container.querySelector("[data-discovery-state=new]")).toBeTruthy();
    const styles = Object.values(DEPLOYMENT_STATE_STYLE).map((s) => `${s.tone}/${s.icon}`);
    expect(new Set(styles).size).toBe(styles.length);
  });
});

describe("<CertificateDeployments>", () => {
  it("shows each target's state, version, served fingerprint, message and job, and targets with no record", async () => {
    renderPanel("certificates/web", ["targets/site", "targets/lb", "targets/new"]);
    const site = (await screen.findByText("Site nginx")).closest("tr")!;
    expect(listed.at(-1)).toMatchObject({ parent: "certificates/web", pageToken: "" });
    expect(within(site).getByText("Verified")).toBeTruthy();
    expect(site.textContent).toContain("#2");
    expect(within(site).getByTestId("served-fingerprint").textContent).toContain("9f86d081…0a08");
    expect(within(site).getByRole("button", { name: "Copy served fingerprint on site" })).toBeTruthy();
    expect(site.textContent).not.toContain("not the current version");
    expect(within(site).getByRole("link", { name: "0192abcd-ef0…" }).getAttribute("href")).toBe("/jobs/0192abcd-ef01-7abc-8def-0123456789ab");

    const lb = screen.getByText("Load balancer").closest("tr")!;
    expect(within(lb).getByText("Mismatch")).toBeTruthy();
    expect(lb.textContent).toContain("#1 (old)");
    expect(within(lb).getByTestId("deployment-message").textContent).toBe("the endpoint serves another certificate");

    await waitFor(() => expect(document.querySelector('[data-deployment-missing="targets/new"]')!.textContent).toContain("No record"));
  });

  it("says when the server does not serve deployments", async () => {
    renderPanel("certificates/old-server", []);
    await screen.findByText("Deployments are not served by this server yet");
    expect(screen.getByText("ListDeployments is not built yet")).toBeTruthy();
  });
});
