// Policies against an in-memory InventoryService: the list shows rules,
// severities, selectors and violation counts summed over every page of
// ListPolicyViolations(policy); the form sends each rule kind as the API
// takes it and puts the API's violations under the field they name; delete
// asks first; the violations list sends its URL filters; the certificate
// detail's panel asks for that certificate's violations.
import { describe, expect, it, vi, beforeEach } from "vitest";
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CertificateSchema,
  InventoryService,
  PolicySchema,
  PolicySeverity,
  type CreatePolicyRequest,
  type ListPolicyViolationsRequest,
  type UpdatePolicyRequest,
} from "../gen/certctl/inventory/v1/inventory_pb";
import { IssuanceService } from "../gen/certctl/issuance/v1/issuance_pb";
import { KeyAlgorithm } from "../gen/certctl/type/v1/key_pb";

const violationRequests: ListPolicyViolationsRequest[] = [];
const createdPolicies: CreatePolicyRequest[] = [];
const updatedPolicies: UpdatePolicyRequest[] = [];
const deleted: string[] = [];
let policiesServed = true;
let noPolicies = false;

function badRequest(violations: [string, string][]): Uint8Array {
  const w = new BinaryWriter();
  for (const [field, description] of violations) {
    w.uint32((1 << 3) | 2).fork();
    w.uint32((1 << 3) | 2).string(field);
    w.uint32((2 << 3) | 2).string(description);
    w.join();
  }
  return w.finish();
}

const prodWeb = () =>
  create(PolicySchema, {
    name: "policies/prod-web",
    displayName: "Production web",
    selector: { environments: ["production"], teams: ["teams/platform"] },
    rules: [
      { id: "domains", severity: PolicySeverity.ERROR, kind: { case: "allowedDomains", value: { patterns: ["*.example.com", ".internal.example.com"] } } },
      { id: "lifetime", severity: PolicySeverity.CRITICAL, kind: { case: "maxLifetime", value: { maxLifetime: { seconds: 7_776_000n } } } },
      { id: "keys", severity: PolicySeverity.WARNING, kind: { case: "keyAlgorithms", value: { allowed: [KeyAlgorithm.ECDSA_P256], minStrengthBits: 128 } } },
    ],
    updateTime: timestampFromDate(new Date(Date.now() - 3_600_000)),
  });

const tagging = () =>
  create(PolicySchema, {
    name: "policies/tagging",
    rules: [{ id: "cost-center", severity: PolicySeverity.WARNING, kind: { case: "requiredMetadataKeys", value: { keys: ["cost-center"] } } }],
  });

vi.mock("../api/client", () => {
  const transport = createRouterTransport(({ service }) => {
    service(InventoryService, {
      listPolicies() {
        if (!policiesServed) throw new ConnectError("ListPolicies is not built yet", Code.Unimplemented);
        return { policies: noPolicies ? [] : [prodWeb(), tagging()] };
      },
      getPolicy(req) {
        if (req.name === "policies/prod-web") return { policy: prodWeb() };
        throw new ConnectError(`${req.name} not found`, Code.NotFound);
      },
      listPolicyViolations(req) {
        violationRequests.push(req);
        if (req.policy === "policies/prod-web" && req.pageSize === 1000) {
          // Two pages: the count is the sum of both pages' counts.
          if (req.pageToken === "")
            return {
              violations: [],
              counts: [{ policy: "policies/prod-web", errorCount: 2, warningCount: 1 }],
              examinedCertificateCount: 1000,
              nextPageToken: "more",
            };
          return { violations: [], counts: [{ policy: "policies/prod-web", criticalCount: 1, errorCount: 1 }], examinedCertificateCount: 400 };
        }
        if (req.policy === "policies/tagging" && req.pageSize === 1000) return { violations: [], counts: [], examinedCertificateCount: 1400 };
        const all = [
          { policy: "policies/prod-web", rule: "lifetime", severity: PolicySeverity.CRITICAL, message: "a lifetime of 365 days exceeds the maximum of 90 days", certificate: "certificates/ldap" },
          { policy: "policies/prod-web", rule: "domains", severity: PolicySeverity.ERROR, message: "shop.example.org is outside the allowed domains", certificate: "certificates/shop" },
          { policy: "policies/tagging", rule: "cost-center", severity: PolicySeverity.WARNING, message: "metadata cost-center is missing", certificate: "certificates/shop" },
        ];
        return {
          violations: all.filter(
            (v) =>
              (!req.policy || v.policy === req.policy) &&
              (!req.certificate || v.certificate === req.certificate) &&
              (req.severity === PolicySeverity.UNSPECIFIED || v.severity === req.severity),
          ),
          examinedCertificateCount: 40,
        };
      },
      createPolicy(req) {
        createdPolicies.push(req);
        if (req.policyId === "Bad ID") {
          throw new ConnectError("policy_id: not a valid id", Code.InvalidArgument, undefined, [
            { type: "google.rpc.BadRequest", value: badRequest([["policy_id", "lower-case letters, digits, - and . only"]]) } as never,
          ]);
        }
        const second = req.policy?.rules[1];
        if (second?.kind.case === "allowedDomains" && second.kind.value.patterns.includes("a.*.example.com")) {
          throw new ConnectError("policy.rules[1].allowed_domains[1]: `a.*.example.com`: `*` is allowed only as a whole first label", Code.InvalidArgument, undefined, [
            {
              type: "google.rpc.BadRequest",
              value: badRequest([["policy.rules[1].allowed_domains[1]", "`a.*.example.com`: `*` is allowed only as a whole first label, as in `*.example.com`"]]),
            } as never,
          ]);
        }
        return { policy: create(PolicySchema, { displayName: req.policy?.displayName, rules: req.policy?.rules, selector: req.policy?.selector, name: `policies/${req.policyId}` }) };
      },
      updatePolicy(req) {
        updatedPolicies.push(req);
        return { policy: { ...prodWeb(), ...req.policy, updateTime: timestampFromDate(new Date()) } };
      },
      deletePolicy(req) {
        deleted.push(req.name);
        return {};
      },
      listTeams: () => ({ teams: [{ name: "teams/platform", displayName: "Platform" }, { name: "teams/payments", displayName: "Payments" }] }),
    });
    service(IssuanceService, { listIssuers: () => ({ issuers: [{ name: "issuers/local", displayName: "Local CA" }] }) });
  });
  return { inventory: createClient(InventoryService, transport), issuance: createClient(IssuanceService, transport), audit: {}, scheduler: {} };
});

const { PoliciesView, PolicyDetail, PolicyFormView, PolicyViolationsView } = await import("./Policies");
const { CertificateViolations } = await import("../components/policies");
const { ToastProvider } = await import("../components/Toasts");

function renderAt(url: string) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[url]}>
        <ToastProvider>
          <Routes>
            <Route path="/policies" element={<PoliciesView />} />
            <Route path="/policies/new" element={<PolicyFormView mode="create" />} />
            <Route path="/policies/:id" element={<PolicyDetail />} />
            <Route path="/policies/:id/edit" element={<PolicyFormView mode="edit" />} />
            <Route path="/policy-violations" element={<PolicyViolationsView />} />
            <Route path="/certificates/:id" element={<p>certificate page</p>} />
          </Routes>
        </ToastProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

/** The table row of `name`, once listed. */
async function rowOf(name: string): Promise<HTMLTableRowElement> {
  return waitFor(() => {
    const r = document.querySelector<HTMLTableRowElement>(`tr[data-policy="${name}"]`);
    if (!r) throw new Error(`no row for ${name}`);
    return r;
  });
}

beforeEach(() => {
  violationRequests.length = 0;
  createdPolicies.length = 0;
  updatedPolicies.length = 0;
  deleted.length = 0;
});

describe("<PoliciesView>", () => {
  it("lists each policy with its rules, severities, selector and violation counts summed over every page", async () => {
    renderAt("/policies");
    const row = await rowOf("policies/prod-web");
    expect(within(row).getByText("Production web")).toBeTruthy();
    // Rules: id, severity badge, what the rule checks.
    expect(row.textContent).toContain("Allowed domains: *.example.com, .internal.example.com");
    expect(row.textContent).toContain("Maximum lifetime: at most 90 days");
    expect(row.textContent).toContain("ECDSA P-256; ≥ 128 security bits");
    expect(row.querySelector("[data-severity=critical]")).toBeTruthy();
    // Selector.
    expect(row.textContent).toContain("production");
    expect(row.textContent).toContain("platform");

    // 2 errors + 1 warning on page 1, 1 critical + 1 error on page 2.
    const count = await waitFor(() => {
      const c = row.querySelector<HTMLElement>("[data-testid=violation-count]");
      if (!c) throw new Error("not counted yet");
      return c;
    });
    expect(count.dataset.count).toBe("5");
    expect(within(count).getByRole("link", { name: "5 violations of policies/prod-web" }).getAttribute("href")).toBe("/policy-violations?policy=prod-web");
    expect(count.querySelector("[data-severity-count=error]")!.textContent).toContain("3");
    expect(count.querySelector("[data-severity-count=critical]")!.textContent).toContain("1");
    expect(count.querySelector("[data-severity-count=warning]")!.textContent).toContain("1");
    expect(count.querySelector("[data-severity-count=error]")!.getAttribute("href")).toBe("/policy-violations?policy=prod-web&severity=error");
    const counted = violationRequests.filter((r) => r.policy === "policies/prod-web");
    expect(counted.map((r) => [r.pageSize, r.pageToken])).toEqual([
      [1000, ""],
      [1000, "more"],
    ]);

    // A policy nothing breaks says so, and the selector-less one judges everything.
    const other = await rowOf("policies/tagging");
    await waitFor(() => expect(other.querySelector("[data-testid=violation-count]")?.textContent).toContain("None"));
    expect(other.textContent).toContain("every certificate");
  });

  it("deletes only after confirming what happens", async () => {
    renderAt("/policies");
    await rowOf("policies/tagging");
    await userEvent.click(screen.getByRole("button", { name: "Delete policies/tagging" }));
    const dialog = screen.getByRole("dialog");
    expect(dialog.textContent).toMatch(/issuance no longer checks its rules/);
    expect(deleted).toEqual([]);
    await userEvent.click(within(dialog).getByRole("button", { name: "Delete policy" }));
    await waitFor(() => expect(deleted).toEqual(["policies/tagging"]));
    await screen.findByText("Deleted policies/tagging");
  });

  it("shows the empty state, and says when the server does not serve policies", async () => {
    noPolicies = true;
    const { unmount } = renderAt("/policies");
    await screen.findByText("No policies yet");
    expect(screen.getByRole("link", { name: "Create a policy" }).getAttribute("href")).toBe("/policies/new");
    noPolicies = false;
    unmount();

    policiesServed = false;
    renderAt("/policies");
    await screen.findByText("Policies are not served by this server yet");
    expect(screen.getByText("ListPolicies is not built yet")).toBeTruthy();
    policiesServed = true;
  });
});

describe("<PolicyFormView>", () => {
  it("checks each rule's own fields before sending, then sends every rule kind as the API takes it", async () => {
    renderAt("/policies/new");
    await userEvent.type(screen.getByLabelText("Display name"), "Prod web");
    expect((screen.getByLabelText("ID") as HTMLInputElement).value).toBe("prod-web");

    // Rule 1 has no type yet: refused before any request.
    await userEvent.click(screen.getByRole("button", { name: "Create policy" }));
    const rule1 = screen.getByRole("group", { name: "Rule 1" });
    expect(within(rule1).getByText("Choose what the rule checks")).toBeTruthy();
    expect(createdPolicies).toHaveLength(0);

    // Max lifetime: a bad duration is caught under its field.
    await userEvent.selectOptions(within(rule1).getByLabelText("Checks"), "maxLifetime");
    const lifetime = within(rule1).getByLabelText("Maximum lifetime");
    await userEvent.type(lifetime, "3 months");
    await userEvent.click(screen.getByRole("button", { name: "Create policy" }));
    expect(within(rule1).getByText(/is not a duration such as 90d/)).toBeTruthy();
    expect(lifetime.getAttribute("aria-invalid")).toBe("true");
    expect(createdPolicies).toHaveLength(0);
    await userEvent.clear(lifetime);
    await userEvent.type(lifetime, "90d");
    await userEvent.selectOptions(within(rule1).getByLabelText("Severity"), String(PolicySeverity.CRITICAL));

    // Rule 2: allowed domains, one per line.
    await userEvent.click(screen.getByRole("button", { name: "Add a rule" }));
    const rule2 = screen.getByRole("group", { name: "Rule 2" });
    await userEvent.selectOptions(within(rule2).getByLabelText("Checks"), "allowedDomains");
    await userEvent.type(within(rule2).getByLabelText("Allowed domains"), "*.example.com\n.internal.example.com");
    await userEvent.type(within(rule2).getByLabelText("Rule ID"), "domains");

    // Rule 3: key algorithms and a minimum strength, as a warning.
    await userEvent.click(screen.getByRole("button", { name: "Add a rule" }));
    const rule3 = screen.getByRole("group", { name: "Rule 3" });
    await userEvent.selectOptions(within(rule3).getByLabelText("Checks"), "keyAlgorithms");
    await userEvent.click(within(rule3).getByLabelText("ECDSA P-384"));
    await userEvent.type(within(rule3).getByLabelText("Minimum strength (bits)"), "128");
    await userEvent.selectOptions(within(rule3).getByLabelText("Severity"), String(PolicySeverity.WARNING));

    // Rule 4: allowed issuers, given by id or name.
    await userEvent.click(screen.getByRole("button", { name: "Add a rule" }));
    const rule4 = screen.getByRole("group", { name: "Rule 4" });
    await userEvent.selectOptions(within(rule4).getByLabelText("Checks"), "allowedIssuers");
    await userEvent.type(within(rule4).getByLabelText("Allowed issuers"), "local, issuers/corp");

    // Selector: an environment and a team.
    await userEvent.type(screen.getByLabelText("Environments"), "production");
    await userEvent.selectOptions(await screen.findByLabelText("Teams"), "teams/platform");

    await userEvent.click(screen.getByRole("button", { name: "Create policy" }));
    await waitFor(() => expect(createdPolicies).toHaveLength(1));
    const req = createdPolicies[0]!;
    expect(req.policyId).toBe("prod-web");
    expect(req.policy?.displayName).toBe("Prod web");
    expect(req.policy?.selector).toMatchObject({ environments: ["production"], teams: ["teams/platform"], labels: {} });
    const rules = req.policy!.rules;
    expect(rules).toHaveLength(4);
    expect(rules[0]).toMatchObject({ id: "", severity: PolicySeverity.CRITICAL, kind: { case: "maxLifetime" } });
    expect(rules[0]!.kind.case === "maxLifetime" && rules[0]!.kind.value.maxLifetime?.seconds).toBe(7_776_000n);
    expect(rules[1]).toMatchObject({ id: "domains", severity: PolicySeverity.ERROR, kind: { case: "allowedDomains", value: { patterns: ["*.example.com", ".internal.example.com"] } } });
    expect(rules[2]).toMatchObject({ severity: PolicySeverity.WARNING, kind: { case: "keyAlgorithms", value: { allowed: [KeyAlgorithm.ECDSA_P384], minStrengthBits: 128 } } });
    expect(rules[3]).toMatchObject({ kind: { case: "allowedIssuers", value: { issuers: ["issuers/local", "issuers/corp"] } } });
    // Created: on to the policy's page.
    await screen.findByText("Created policies/prod-web");
  });

  it("shows the API's violations under the field and the rule entry they name", async () => {
    renderAt("/policies/new");
    await userEvent.type(screen.getByLabelText("ID"), "Bad ID");
    const rule1 = screen.getByRole("group", { name: "Rule 1" });
    await userEvent.selectOptions(within(rule1).getByLabelText("Checks"), "requiredMetadataKeys");
    await userEvent.type(within(rule1).getByLabelText("Required metadata keys"), "cost-center");
    await userEvent.click(screen.getByRole("button", { name: "Create policy" }));
    await screen.findByText("lower-case letters, digits, - and . only");
    expect(screen.getByLabelText("ID").getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByRole("alert").textContent).toContain("policy_id: not a valid id");

    const id = screen.getByLabelText("ID");
    await userEvent.clear(id);
    await userEvent.type(id, "domains");
    await userEvent.click(screen.getByRole("button", { name: "Add a rule" }));
    const rule2 = screen.getByRole("group", { name: "Rule 2" });
    await userEvent.selectOptions(within(rule2).getByLabelText("Checks"), "allowedDomains");
    await userEvent.type(within(rule2).getByLabelText("Allowed domains"), "*.example.com\na.*.example.com");
    await userEvent.click(screen.getByRole("button", { name: "Create policy" }));
    // Under rule 2's domain list, naming the entry; rule 1 is untouched.
    await within(rule2).findByText(/entry 2 \(a\.\*\.example\.com\): `a\.\*\.example\.com`: `\*` is allowed only as a whole first label/);
    expect(within(rule2).getByLabelText("Allowed domains").getAttribute("aria-invalid")).toBe("true");
    expect(within(rule1).getByLabelText("Required metadata keys").getAttribute("aria-invalid")).toBeNull();
    expect(createdPolicies.at(-1)!.policy!.rules[1]!.kind).toMatchObject({ case: "allowedDomains", value: { patterns: ["*.example.com", "a.*.example.com"] } });
  });

  it("edits a policy, sending only what changed in update_mask", async () => {
    renderAt("/policies/prod-web/edit");
    const rule2 = await screen.findByRole("group", { name: "Rule 2" });
    // Loaded as the API returned it.
    expect((within(rule2).getByLabelText("Maximum lifetime") as HTMLInputElement).value).toBe("90d");
    expect(screen.getByText("No changes yet")).toBeTruthy();
    const lifetime = within(rule2).getByLabelText("Maximum lifetime");
    await userEvent.clear(lifetime);
    await userEvent.type(lifetime, "30d");
    await screen.findByText("Will update: rules");
    await userEvent.click(screen.getByRole("button", { name: "Save changes" }));
    await waitFor(() => expect(updatedPolicies).toHaveLength(1));
    const req = updatedPolicies[0]!;
    expect(req.updateMask?.paths).toEqual(["rules"]);
    expect(req.policy?.name).toBe("policies/prod-web");
    const r = req.policy!.rules[1]!;
    expect(r.id).toBe("lifetime");
    expect(r.kind.case === "maxLifetime" && r.kind.value.maxLifetime?.seconds).toBe(2_592_000n);
    // The other rules go back unchanged.
    expect(req.policy!.rules[0]!.kind).toMatchObject({ case: "allowedDomains", value: { patterns: ["*.example.com", ".internal.example.com"] } });
    expect(req.policy!.rules[2]!.kind).toMatchObject({ case: "keyAlgorithms", value: { allowed: [KeyAlgorithm.ECDSA_P256], minStrengthBits: 128 } });
  });
});

describe("<PolicyViolationsView>", () => {
  it("sends the URL's filters and links each violation to its certificate", async () => {
    renderAt("/policy-violations?policy=prod-web&severity=critical");
    const row = await waitFor(() => {
      const r = document.querySelector<HTMLTableRowElement>('tr[data-violation="certificates/ldap|policies/prod-web|lifetime"]');
      if (!r) throw new Error("no row yet");
      return r;
    });
    const listed = () => violationRequests.filter((r) => r.pageSize === 100);
    expect(listed().at(-1)).toMatchObject({ policy: "policies/prod-web", severity: PolicySeverity.CRITICAL, certificate: "", pageToken: "" });
    expect(within(row).getByRole("link", { name: "ldap" }).getAttribute("href")).toBe("/certificates/ldap");
    expect(row.textContent).toContain("a lifetime of 365 days exceeds the maximum of 90 days");
    expect(row.querySelector("[data-severity=critical]")).toBeTruthy();
    expect((screen.getByLabelText("Severity") as HTMLSelectElement).value).toBe("critical");
    expect(document.querySelectorAll("tr[data-violation]")).toHaveLength(1);

    // Filter by certificate: Enter applies it.
    await userEvent.selectOptions(screen.getByLabelText("Severity"), "");
    await userEvent.selectOptions(screen.getByLabelText("Policy"), "");
    await userEvent.type(screen.getByLabelText("Certificate"), "shop{Enter}");
    await waitFor(() => expect(listed().at(-1)).toMatchObject({ policy: "", severity: PolicySeverity.UNSPECIFIED, certificate: "certificates/shop" }));
    await waitFor(() => expect(document.querySelectorAll("tr[data-violation]")).toHaveLength(2));
    expect(screen.getByText("metadata cost-center is missing")).toBeTruthy();

    await userEvent.click(within(document.querySelector<HTMLElement>('tr[data-violation="certificates/shop|policies/tagging|cost-center"]')!).getByRole("link", { name: "shop" }));
    await screen.findByText("certificate page");
  });
});

describe("<CertificateViolations>", () => {
  function renderPanel(name: string) {
    const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    return render(
      <QueryClientProvider client={qc}>
        <MemoryRouter>
          <CertificateViolations cert={create(CertificateSchema, { name })} />
        </MemoryRouter>
      </QueryClientProvider>,
    );
  }

  it("lists the certificate's violations, or says it keeps every rule", async () => {
    renderPanel("certificates/shop");
    await screen.findByText("shop.example.org is outside the allowed domains");
    expect(violationRequests.filter((r) => r.pageSize === 100).at(-1)).toMatchObject({ certificate: "certificates/shop", policy: "" });
    expect(screen.getByRole("link", { name: "Production web" }).getAttribute("href")).toBe("/policies/prod-web");
    expect(screen.getByRole("link", { name: "All violations →" }).getAttribute("href")).toBe("/policy-violations?certificate=shop");

    renderPanel("certificates/www");
    await screen.findByText("No policy violations");
  });
});
