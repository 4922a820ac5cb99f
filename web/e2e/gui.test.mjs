// End-to-end: a real `certctl server --demo` serving web/dist and the gRPC-web
// API, driven in headless Chromium (apt `chromium` + npm playwright-core).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { repoRoot, startServer } from "./server.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = process.env.E2E_SCREENSHOTS ?? join(repoRoot, "docs", "images");
const VIEWPORT = { width: 1280, height: 860 };

let server;
let browser;
let page;
const consoleErrors = [];

/** Polls fn until it returns a truthy value or the time runs out. */
async function eventually(fn, what, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function assertNoConsoleErrors(step) {
  assert.deepEqual(consoleErrors, [], `browser console errors during ${step}`);
}

before(async () => {
  server = await startServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: VIEWPORT, colorScheme: "dark", acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(`${msg.text()} @ ${msg.location().url}`);
  });
  page.on("pageerror", (err) => consoleErrors.push(`page error: ${err.message}`));
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("GUI against a real certctl server", { timeout: 300_000 }, async (t) => {
  const url = (path) => `${server.baseUrl}${path}`;

  await t.test("the gateway serves the GUI with SPA fallback", async () => {
    const res = await fetch(url("/certificates/some-deep-link"));
    assert.equal(res.status, 200, "deep links must fall back to index.html");
    assert.match(await res.text(), /<div id="root">/);
  });

  await t.test("dashboard shows summary, timeline and recent activity", async () => {
    await page.goto(url("/"));
    await page.getByRole("heading", { name: "Dashboard" }).waitFor();
    const total = await eventually(async () => {
      const text = await page.getByTestId("summary-total").textContent({ timeout: 1000 });
      return Number(text) > 0 ? Number(text) : 0;
    }, "a non-zero certificate total");
    assert.ok(total >= 20, `demo data should hold ~40 certificates, got ${total}`);
    // Timeline and activity finish loading (chart, or an explicit empty state).
    await eventually(async () => (await page.locator(".timeline svg, .timeline .empty").count()) > 0, "the expiry timeline");
    await eventually(async () => (await page.locator(".activity li, [aria-labelledby=activity-h] .empty").count()) > 0, "recent activity");
    assert.equal(await page.locator("[role=alert]").count(), 0, "no error alerts on the dashboard");
    // Fits 1280 px without horizontal scrolling.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `page overflows horizontally by ${overflow}px at 1280 px`);
    await page.screenshot({ path: join(SHOTS, "dashboard.png") });
    assertNoConsoleErrors("dashboard");
  });

  let firstCertHref;
  await t.test("certificate list: dense table, filters in the URL, search", async () => {
    await page.getByRole("link", { name: "Certificates", exact: true }).click();
    await page.waitForURL(/\/certificates$/);
    const rows = page.locator("table.data tbody tr:not(.skeleton-row)");
    await eventually(async () => (await rows.count()) >= 25, "25+ certificate rows");
    // Default sort is soonest-expiring first.
    const times = await page.locator("table.data tbody time.expiry").evaluateAll((els) => els.map((e) => Date.parse(e.getAttribute("datetime"))));
    const sorted = [...times].sort((a, b) => a - b);
    assert.deepEqual(times, sorted, "rows are sorted by expiry, soonest first");
    await page.screenshot({ path: join(SHOTS, "certificates.png") });
    firstCertHref = await rows.first().locator("td a").first().getAttribute("href");

    // State filter goes into the URL and every row matches it.
    await page.getByLabel("State", { exact: true }).selectOption("expired");
    await page.waitForURL(/state=expired/);
    await eventually(async () => {
      const states = await page.locator("table.data tbody .badge").allTextContents();
      return states.length > 0 && states.every((s) => s.trim() === "Expired");
    }, "only expired certificates listed");

    // The URL alone restores the filter (shareable).
    await page.goto(url("/certificates?state=expired"));
    assert.equal(await page.getByLabel("State", { exact: true }).inputValue(), "expired");

    // "/" focuses search; typing filters server-side.
    await page.goto(url("/certificates"));
    await eventually(async () => (await rows.count()) >= 25, "rows again");
    const cn = (await rows.nth(3).locator("td").nth(2).textContent()).replace(/\s*\+\d+$/, "").trim();
    const needle = cn.split(".")[0];
    await page.locator("body").press("/");
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("type")), "search");
    await page.keyboard.type(needle);
    await page.waitForURL(new RegExp(`q=${encodeURIComponent(needle)}`));
    await eventually(async () => {
      const cns = await page.locator("table.data tbody tr td:nth-child(3)").allTextContents();
      return cns.length > 0 && cns.length < 25 && cns.every((c) => c.toLowerCase().includes(needle.toLowerCase()));
    }, `rows matching "${needle}"`);
    await page.getByRole("button", { name: /Remove filter search/ }).click();
    await page.waitForURL((u) => !u.search.includes("q="));
    assertNoConsoleErrors("certificate list");
  });

  await t.test("certificate detail shows fields, version and audit history", async () => {
    await page.goto(url(firstCertHref));
    await page.getByRole("heading", { name: /Current version/ }).waitFor();
    await page.getByRole("heading", { name: "Versions" }).waitFor();
    await page.getByRole("heading", { name: "Audit history" }).waitFor();
    await eventually(async () => (await page.getByRole("button", { name: "Copy serial number" }).count()) === 1, "serial number with a copy button");
    await eventually(async () => (await page.locator("[aria-labelledby=versions-h] table tbody tr").count()) > 0, "the versions table");
    await page.getByRole("button", { name: /Download chain PEM/ }).waitFor();
    // The renewal time the inventory keeps: a moment, or why there is none.
    const renewal = await page.locator("dt:text-is('Next renewal') + dd").textContent();
    assert.match(renewal ?? "", /^(in .+|.+ ago|just now) .+|^none: /, `next renewal shown: ${renewal}`);
    await page.waitForLoadState("networkidle");
    await page.screenshot({ path: join(SHOTS, "certificate-detail.png") });
    assertNoConsoleErrors("certificate detail");
  });

  const id = `e2e-web-${Date.now().toString(36)}`;
  await t.test("creating a certificate shows API validation by field, then succeeds", async () => {
    await page.goto(url("/certificates/new"));
    await page.getByRole("heading", { name: "New certificate" }).waitFor();
    // An invalid id is refused by the server; its message is shown, never a generic one.
    await page.getByLabel("Common name", { exact: true }).fill("e2e.example.com");
    await page.getByLabel("ID", { exact: true }).fill("Not A Valid ID!");
    await page.getByRole("button", { name: "Create certificate" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    const message = await alert.textContent();
    assert.doesNotMatch(message, /something went wrong/i);
    assert.ok(message.length > 20, `the server's message is shown: ${message}`);
    await eventually(async () => (await page.locator(".field.has-error input").count()) > 0, "the ID field highlighted as invalid");

    await page.getByLabel("ID", { exact: true }).fill(id);
    await page.getByLabel("Display name", { exact: true }).fill("E2E web");
    await page.getByLabel("Subject alternative names", { exact: true }).fill("e2e.example.com\nwww.e2e.example.com");
    await page.getByLabel("Environment", { exact: true }).fill("staging");
    const owner = page.getByLabel("Owner", { exact: true });
    const ownerValue = await eventually(async () => {
      const values = await owner.locator("option").evaluateAll((os) => os.map((o) => o.value).filter(Boolean));
      return values[0];
    }, "owner options");
    await owner.selectOption(ownerValue);
    await page.getByRole("button", { name: "Create certificate" }).click();
    await page.waitForURL(new RegExp(`/certificates/${id}$`));
    await page.getByRole("heading", { name: "E2E web" }).waitFor();
    // Consuming a gRPC error logs nothing; the 200-status gRPC-web error is not a console error either.
    assertNoConsoleErrors("create");
  });

  await t.test("editing the certificate sends only the changed fields", async () => {
    await page.locator(".page-head").getByRole("link", { name: "Edit" }).click();
    await page.waitForURL(new RegExp(`/certificates/${id}/edit$`));
    const dn = page.getByLabel("Display name", { exact: true });
    await eventually(async () => (await dn.inputValue()) === "E2E web", "form loaded");
    await dn.fill("E2E web (edited)");
    await page.getByLabel("Environment", { exact: true }).fill("production");
    await page.getByText("Will update: display_name, environment").waitFor();
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.waitForURL(new RegExp(`/certificates/${id}$`));
    await page.getByRole("heading", { name: "E2E web (edited)" }).waitFor();
    await page.getByRole("link", { name: "production" }).waitFor();
    assertNoConsoleErrors("edit");
  });

  await t.test("bulk change owner updates the selected certificates", async () => {
    await page.goto(url(`/certificates?q=${encodeURIComponent("e2e.example.com")}`));
    const rows = page.locator("table.data tbody tr:not(.skeleton-row)");
    await eventually(async () => (await rows.count()) === 1, "exactly the created certificate");
    const before = (await rows.first().locator("td").nth(5).textContent()).trim();
    await page.getByLabel(`Select certificates/${id}`, { exact: true }).check();
    await page.getByRole("button", { name: /Change owner/ }).click();
    const dialog = page.getByRole("dialog");
    const select = dialog.getByLabel("New owner", { exact: true });
    const options = await select.locator("option").evaluateAll((os) => os.map((o) => ({ value: o.value, text: o.textContent })).filter((o) => o.value));
    assert.ok(options.length >= 2, "the demo has several owners");
    const target = options.find((o) => !before.startsWith(o.text.split(" (")[0])) ?? options[1];
    await select.selectOption(target.value);
    await dialog.getByRole("button", { name: /Change owner of 1/ }).click();
    await eventually(async () => (await page.getByRole("dialog").count()) === 0 || !(await page.getByRole("dialog").isVisible()), "the dialog to close");
    await eventually(async () => (await rows.first().locator("td").nth(5).textContent()).trim() !== before, "the new owner in the row");
    assertNoConsoleErrors("bulk change owner");
  });

  await t.test("the audit trail shows the create and update, and the chain verifies", async () => {
    await page.goto(url(`/audit?resource=${encodeURIComponent(`certificates/${id}`)}`));
    await page.getByRole("heading", { name: "Audit trail" }).waitFor();
    const actions = await eventually(
      async () => {
        const a = await page.locator("table.data tbody td:nth-child(4)").allTextContents();
        if (a.some((x) => /CreateCertificate/.test(x)) && a.some((x) => /UpdateCertificate/.test(x))) return a;
        await page.reload();
        await page.getByRole("heading", { name: "Audit trail" }).waitFor();
        return null;
      },
      "CreateCertificate and UpdateCertificate audit events",
      30_000,
    );
    assert.ok(actions.length >= 2);
    await page.getByRole("button", { name: /Verify chain/ }).click();
    const result = page.getByTestId("verify-result");
    await result.waitFor();
    assert.match(await result.textContent(), /Chain valid/);

    // Export streams the server's CSV into a download.
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
    assert.match(download.suggestedFilename(), /\.csv$/);
    assertNoConsoleErrors("audit");
  });

  await t.test("deleting the certificate returns to the list", async () => {
    await page.goto(url(`/certificates/${id}`));
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete certificate" }).click();
    await page.waitForURL(/\/certificates$/);
    const res = await page.goto(url(`/certificates/${id}`));
    assert.equal(res.status(), 200);
    // The API answers NotFound; the page shows its message rather than a blank screen.
    await page.getByRole("alert").waitFor();
    assert.match(await page.getByRole("alert").textContent(), /not.found|not found|does not exist|no such/i);
    assertNoConsoleErrors("delete");
  });

  // The demo's ldap certificate (team identity, production) is valid for 365 days:
  // a 100-day maximum lifetime for that team's production certificates breaks only it.
  const policyId = `e2e-identity-${Date.now().toString(36)}`;
  const policyName = `policies/${policyId}`;
  const hygieneId = `e2e-hygiene-${Date.now().toString(36)}`;
  await t.test("policies: a bad rule is refused under its field, then a policy is created", async () => {
    await page.getByRole("link", { name: "Policies", exact: true }).click();
    await page.waitForURL(/\/policies$/);
    await page.getByRole("heading", { name: "Policies", exact: true }).waitFor();
    await page.getByRole("link", { name: "New policy" }).click();
    await page.waitForURL(/\/policies\/new$/);
    await page.getByLabel("ID", { exact: true }).fill(policyId);
    await page.getByLabel("Display name", { exact: true }).fill("E2E identity lifetime");
    await page.getByLabel("Environments", { exact: true }).fill("production");
    const teams = page.getByLabel("Teams", { exact: true });
    await eventually(async () => (await teams.locator("option[value='teams/identity']").count()) === 1, "team options");
    await teams.selectOption(["teams/identity"]);

    const rule1 = page.getByRole("group", { name: "Rule 1", exact: true });
    await rule1.getByLabel("Checks", { exact: true }).selectOption("maxLifetime");
    await rule1.getByLabel("Maximum lifetime", { exact: true }).fill("100d");
    await rule1.getByLabel("Rule ID", { exact: true }).fill("lifetime");
    // Error is the default severity.
    assert.equal(await rule1.getByLabel("Severity", { exact: true }).locator("option:checked").textContent(), "Error");

    // A domain pattern the API cannot evaluate: its message lands under rule 2's field.
    await page.getByRole("button", { name: "Add a rule" }).click();
    const rule2 = page.getByRole("group", { name: "Rule 2", exact: true });
    await rule2.getByLabel("Checks", { exact: true }).selectOption("allowedDomains");
    await rule2.getByLabel("Allowed domains", { exact: true }).fill("a.*.example.com");
    await page.getByRole("button", { name: "Create policy" }).click();
    await page.getByRole("alert").first().waitFor();
    await eventually(async () => (await rule2.getByLabel("Allowed domains", { exact: true }).getAttribute("aria-invalid")) === "true", "rule 2's domains marked invalid");
    const under = await rule2.locator(".field.has-error .error-text").textContent();
    assert.match(under, /a\.\*\.example\.com/, `the API's message under the field: ${under}`);
    assert.equal(await rule1.locator(".field.has-error").count(), 0, "rule 1 is not blamed");

    await page.getByRole("button", { name: "Remove rule 2" }).click();
    await page.getByRole("button", { name: "Create policy" }).click();
    await page.waitForURL(new RegExp(`/policies/${policyId}$`));
    await page.getByRole("heading", { name: "E2E identity lifetime" }).waitFor();
    assertNoConsoleErrors("create policy");
  });

  await t.test("policies: the list shows the rule, selector and violation count the API reports", async () => {
    // What the API says, independently of the GUI.
    const rest = await (await fetch(url(`/api/v1/policyViolations?policy=${encodeURIComponent(policyName)}`))).json();
    const certs = (rest.violations ?? []).map((v) => v.certificate);
    assert.deepEqual(certs, ["certificates/ldap"], `REST lists the demo's ldap certificate: ${JSON.stringify(rest)}`);

    // A second policy, made through REST, that many demo certificates break (for the
    // screenshot, and to hold the GUI's sums to the API's page counts).
    const extra = await fetch(url(`/api/v1/policies?policyId=${hygieneId}`), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        displayName: "Production hygiene",
        selector: { environments: ["production"] },
        rules: [
          { id: "one-label", severity: "POLICY_SEVERITY_CRITICAL", allowedDomains: { patterns: ["*.example.com"] } },
          { id: "cost-center", severity: "POLICY_SEVERITY_WARNING", requiredMetadataKeys: { keys: ["cost-center"] } },
        ],
      }),
    });
    assert.equal(extra.status, 200, await extra.text());
    const sums = { warning: 0, error: 0, critical: 0 };
    for (let token = "", pages = 0; ; pages++) {
      const r = await (await fetch(url(`/api/v1/policyViolations?policy=policies/${hygieneId}&pageSize=1000&pageToken=${encodeURIComponent(token)}`))).json();
      for (const c of r.counts ?? []) {
        sums.warning += c.warningCount ?? 0;
        sums.error += c.errorCount ?? 0;
        sums.critical += c.criticalCount ?? 0;
      }
      token = r.nextPageToken ?? "";
      if (!token || pages > 20) break;
    }
    assert.ok(sums.critical > 0 && sums.warning > 0, `the demo breaks both hygiene rules: ${JSON.stringify(sums)}`);

    await page.goto(url("/policies"));
    const hygiene = page.locator(`tr[data-policy="policies/${hygieneId}"]`).getByTestId("violation-count");
    await eventually(async () => (await hygiene.getAttribute("data-count")) === String(sums.warning + sums.critical), `the GUI's count equals the API's (${JSON.stringify(sums)})`);
    assert.match(await hygiene.locator("[data-severity-count=critical]").textContent(), new RegExp(`Critical\\s*${sums.critical}$`));
    assert.match(await hygiene.locator("[data-severity-count=warning]").textContent(), new RegExp(`Warning\\s*${sums.warning}$`));
    const row = page.locator(`tr[data-policy="${policyName}"]`);
    await row.waitFor();
    const count = row.getByTestId("violation-count");
    await eventually(async () => (await count.getAttribute("data-count")) === "1", "a violation count of 1");
    assert.match(await count.locator("[data-severity-count=error]").textContent(), /Error\s*1/);
    const text = await row.textContent();
    assert.match(text, /Maximum lifetime: at most 100 days/);
    assert.match(text, /production/);
    assert.match(text, /identity/);
    await page.waitForLoadState("networkidle");
    // Fits 1280 px: the table does not scroll sideways.
    const sideways = await page.locator("section[aria-label=Policies] .table-wrap").evaluate((el) => el.scrollWidth - el.clientWidth);
    assert.ok(sideways <= 0, `the policies table overflows by ${sideways}px at 1280 px`);
    await page.screenshot({ path: join(SHOTS, "policies.png") });

    // The count opens the violations list filtered by the policy, in the URL.
    await count.getByRole("link", { name: `1 violation of ${policyName}` }).click();
    await page.waitForURL(new RegExp(`/policy-violations\\?policy=${policyId}$`));
    assert.equal(await page.getByLabel("Policy", { exact: true }).inputValue(), policyId);
    const vrow = page.locator(`tr[data-violation="certificates/ldap|${policyName}|lifetime"]`);
    await vrow.waitFor();
    assert.equal(await page.locator("tr[data-violation]").count(), 1);
    assert.match(await vrow.textContent(), /365 days/);
    assertNoConsoleErrors("policy list");
  });

  await t.test("policies: the violation shows on the certificate's page", async () => {
    await page.locator(`tr[data-violation="certificates/ldap|${policyName}|lifetime"]`).getByRole("link", { name: "ldap" }).click();
    await page.waitForURL(/\/certificates\/ldap$/);
    const panel = page.locator("section[aria-labelledby=violations-h]");
    await panel.getByRole("heading", { name: "Policy violations" }).waitFor();
    const vrow = panel.locator(`tr[data-violation="certificates/ldap|${policyName}|lifetime"]`);
    await vrow.waitFor();
    assert.match(await vrow.textContent(), /Error/);
    assert.match(await vrow.textContent(), /365 days/);
    await vrow.getByRole("link", { name: "E2E identity lifetime" }).waitFor();
    // The REST-made policy judges it too: ldap.internal.example.com is two labels below example.com.
    await panel.locator(`tr[data-violation="certificates/ldap|policies/${hygieneId}|one-label"]`).waitFor();
    assertNoConsoleErrors("certificate violations");
  });

  await t.test("policies: deleting asks first, then the violation is gone", async () => {
    await page.goto(url("/policies"));
    const row = page.locator(`tr[data-policy="${policyName}"]`);
    await row.waitFor();
    await row.getByRole("button", { name: `Delete ${policyName}` }).click();
    const dialog = page.getByRole("dialog");
    assert.match(await dialog.textContent(), /issuance no longer checks its rules/);
    await dialog.getByRole("button", { name: "Delete policy" }).click();
    await eventually(async () => (await page.locator(`tr[data-policy="${policyName}"]`).count()) === 0, "the policy to leave the list");
    assert.equal((await fetch(url(`/api/v1/${policyName}`))).status, 404, "the API no longer has it");
    assert.equal((await fetch(url(`/api/v1/policies/${hygieneId}`), { method: "DELETE" })).status, 200, "the REST-made policy is deleted too");
    await page.goto(url("/certificates/ldap"));
    await page.locator("section[aria-labelledby=violations-h]").getByText("No policy violations").waitFor();
    assertNoConsoleErrors("delete policy");
  });

  await t.test("theme toggle persists across reloads", async () => {
    const before = await page.evaluate(() => document.documentElement.dataset.theme);
    await page.getByRole("button", { name: /Switch to .* theme/ }).click();
    const afterToggle = await page.evaluate(() => document.documentElement.dataset.theme);
    assert.notEqual(afterToggle, before);
    await page.reload();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), afterToggle);
    assertNoConsoleErrors("theme");
  });
});
