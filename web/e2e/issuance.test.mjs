// End-to-end for issuance and jobs: issuers and their CA certificates, profiles
// with the API's validation, a server-keyed certificate issued through a job,
// the job queue, and revocation from the issued list. Same harness as
// gui.test.mjs: a real `certctl server --demo` and headless Chromium.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startServer, webDir } from "./server.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// Screenshots of these views go beside the server log (docs/images holds the README's).
const SHOTS = process.env.E2E_SCREENSHOTS ?? join(webDir, "e2e", ".artifacts", "screenshots");
const VIEWPORT = { width: 1280, height: 860 };

let server;
let browser;
let page;
let schedulerServed = false;
const consoleErrors = [];

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
  // The scheduler role is new; its REST listing answers 200 once it is served.
  schedulerServed = (await fetch(`${server.baseUrl}/api/v1/jobs`)).status === 200;
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

test("issuance and jobs against a real certctl server", { timeout: 300_000 }, async (t) => {
  const url = (path) => `${server.baseUrl}${path}`;
  // test.fixme equivalent: written, skipped with the reason until the role is served.
  const fixme = schedulerServed ? {} : { skip: "fixme: certctl.scheduler.v1.SchedulerService is not served by this certctl build yet" };
  const suffix = Date.now().toString(36);

  await t.test("issuers page shows the Local CA with its root and intermediate", async () => {
    await page.goto(url("/"));
    await page.getByRole("link", { name: "Issuers & CAs" }).click();
    await page.waitForURL(/\/issuers$/);
    const local = page.locator('[data-issuer="issuers/local"]');
    await local.getByRole("heading", { name: "Local CA" }).waitFor();
    const root = local.locator('article[data-role="root"]');
    const intermediate = local.locator('article[data-role="intermediate"]');
    await root.waitFor();
    await intermediate.waitFor();
    // The intermediate signs leaves; the root does not.
    await intermediate.getByText("Issuing", { exact: true }).waitFor();
    await root.getByText("Not issuing", { exact: true }).waitFor();
    assert.match(await root.textContent(), /certctl Local/);
    await intermediate.getByRole("button", { name: "Copy intermediate SHA-256 fingerprint" }).waitFor();
    assert.match(await intermediate.textContent(), /\.crl/, "the CRL URL is shown");
    const [download] = await Promise.all([page.waitForEvent("download"), intermediate.getByRole("button", { name: /Download intermediate CA certificate PEM/ }).click()]);
    assert.match(download.suggestedFilename(), /\.pem$/);
    await page.screenshot({ path: join(SHOTS, "issuers.png") });
    assertNoConsoleErrors("issuers");
  });

  const profileId = `e2e-prof-${suffix}`;
  await t.test("creating a profile shows the API's refusal of a bad DNS pattern under the field", async () => {
    await page.getByRole("link", { name: "Profiles" }).click();
    await page.waitForURL(/\/profiles$/);
    await page.getByRole("link", { name: "profiles/tls-server" }).waitFor();
    await page.getByRole("link", { name: "New profile" }).click();
    await page.waitForURL(/\/profiles\/new$/);
    await page.getByLabel("Display name", { exact: true }).fill("E2E internal");
    await page.getByLabel("ID", { exact: true }).fill(profileId);
    await page.getByLabel("Max lifetime", { exact: true }).fill("30d");
    await page.getByLabel("Allowed DNS patterns", { exact: true }).fill("**.e2e.example.com\nfoo.*.example.com");
    await page.getByRole("button", { name: "Create profile" }).click();
    await page.getByRole("alert").waitFor();
    const field = page.locator(".field.has-error", { has: page.getByLabel("Allowed DNS patterns", { exact: true }) });
    await field.waitFor();
    const text = await field.locator(".error-text").textContent();
    assert.match(text, /line 2/, `names the offending line: ${text}`);
    assert.match(text, /foo\.\*\.example\.com/, `the server's message: ${text}`);
    assertNoConsoleErrors("profile validation");

    await page.getByLabel("Allowed DNS patterns", { exact: true }).fill("**.e2e.example.com");
    await page.getByRole("button", { name: "Create profile" }).click();
    await page.waitForURL(new RegExp(`/profiles/${profileId}$`));
    await page.getByRole("heading", { name: "E2E internal" }).waitFor();
    assert.match(await page.locator("dl.props").textContent(), /30 days/);

    // Edit sends only the changed field.
    await page.getByRole("link", { name: "Edit" }).click();
    await page.getByLabel("Allow IP address SANs").check();
    await page.getByText("Will update: allow_ip_addresses").waitFor();
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.waitForURL(new RegExp(`/profiles/${profileId}$`));
    await eventually(async () => /IP addresses\s*allowed/.test(await page.locator("dl.props").textContent()), "IP addresses allowed");

    // Nothing was issued under it, so it can be deleted.
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete profile" }).click();
    await page.waitForURL(/\/profiles$/);
    assertNoConsoleErrors("profile create/edit/delete");
  });

  const certId = `e2e-sk-${suffix}`;
  const cn = `${certId}.example.com`;
  await t.test("a server-keyed certificate is created from the form", async () => {
    await page.goto(url("/certificates/new"));
    await page.getByRole("heading", { name: "New certificate" }).waitFor();
    await page.getByLabel("Common name", { exact: true }).fill(cn);
    await page.getByLabel("ID", { exact: true }).fill(certId);
    await page.getByLabel("Display name", { exact: true }).fill("E2E server-keyed");
    await page.getByLabel("Issuer", { exact: true }).fill("issuers/local");
    await page.getByLabel("Profile", { exact: true }).fill("profiles/tls-server");
    await page.getByLabel("Key custody", { exact: true }).check();
    await page.getByLabel("Key algorithm", { exact: true }).selectOption({ label: "ECDSA P-384" });
    await page.getByRole("button", { name: "Create certificate" }).click();
    await page.waitForURL(new RegExp(`/certificates/${certId}$`));
    await page.getByRole("heading", { name: "E2E server-keyed" }).waitFor();
    assert.match(await page.getByTestId("key-custody").textContent(), /Server-keyed/);
    await page.getByText("ECDSA P-384").first().waitFor();
    assertNoConsoleErrors("create server-keyed");
  });

  let issuedByJob = false;
  await t.test("“Issue now” queues a job that is followed to SUCCEEDED or a readable failure", fixme, async () => {
    await page.goto(url(`/certificates/${certId}`));
    await page.getByRole("button", { name: /^(Issue|Renew) now$/ }).click();
    const dialog = page.getByRole("dialog");
    assert.match(await dialog.textContent(), /server-keyed/);
    await dialog.getByRole("button", { name: /^(Issue|Renew) now$/ }).click();
    const progress = page.getByTestId("job-progress").first();
    await progress.waitFor();
    const state = await eventually(
      async () => {
        const s = await progress.locator("[data-job-state]").getAttribute("data-job-state");
        return s === "succeeded" || s === "failed" || s === "cancelled" ? s : null;
      },
      "the job to finish",
      60_000,
    );
    if (state === "succeeded") {
      issuedByJob = true;
      // The certificate reloads with its first version.
      await eventually(async () => (await page.locator("[aria-labelledby=versions-h] table tbody tr").count()) > 0, "the issued version", 20_000);
    } else {
      const err = await progress.locator(".alert").textContent();
      assert.match(err, /[A-Z_]{3,}: \S/, `a failed job shows its code and message: ${err}`);
    }
    await page.screenshot({ path: join(SHOTS, "certificate-job.png") });
    assertNoConsoleErrors("issue now");
  });

  await t.test("the jobs page lists the job, filters by certificate and opens its timeline", fixme, async () => {
    await page.getByRole("link", { name: "Jobs", exact: true }).click();
    await page.waitForURL(/\/jobs$/);
    const row = page.locator("table.data tbody tr", { has: page.getByRole("link", { name: certId, exact: true }) });
    await eventually(async () => (await row.count()) > 0, "the job of the new certificate");
    await page.getByLabel("Certificate", { exact: true }).fill(certId);
    await page.getByLabel("Certificate", { exact: true }).press("Enter");
    await page.waitForURL(new RegExp(`certificate=${certId}`));
    await eventually(async () => {
      const certs = await page.locator("table.data tbody tr td:nth-child(4)").allTextContents();
      return certs.length > 0 && certs.every((c) => c.trim() === certId);
    }, "only this certificate's jobs");
    await page.screenshot({ path: join(SHOTS, "jobs.png") });
    await row.first().locator("td:nth-child(2) a").click();
    await page.waitForURL(/\/jobs\/[^/]+$/);
    await page.getByRole("heading", { name: "Timeline" }).waitFor();
    await eventually(async () => (await page.locator("ol.timeline-events li").count()) > 0, "timeline events");
    await page.getByTestId("job-progress").waitFor();
    await page.screenshot({ path: join(SHOTS, "job.png") });
    assertNoConsoleErrors("jobs");
  });

  /** Waits for the certificate page's state badge to read `state`, reloading meanwhile. */
  async function waitForState(state, what) {
    await eventually(async () => {
      if ((await page.locator(".page-head .badge").first().getAttribute("data-state")) === state) return true;
      await page.reload();
      await page.locator(".page-head .badge").first().waitFor();
      return false;
    }, what, 20_000);
  }

  /** Has the issuer sign the server-keyed certificate directly (REST IssueCertificate), without the scheduler. */
  async function issueDirectly() {
    const r = await fetch(url(`/api/v1/certificates/${certId}:issue`), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(r.status, 200, `IssueCertificate: ${await r.text()}`);
  }

  await t.test("“Renew now” on an active certificate, then “Revoke current version”", async () => {
    if (!issuedByJob) await issueDirectly();
    await page.goto(url(`/certificates/${certId}`));
    await waitForState("active", "the certificate active with version 1");
    if (schedulerServed) {
      const progress = page.getByTestId("job-progress").first();
      const before = await progress.getAttribute("data-job");
      await page.getByRole("button", { name: "Renew now", exact: true }).click();
      await page.getByRole("dialog").getByRole("button", { name: "Renew now", exact: true }).click();
      // The new job goes on top and is followed until it finishes.
      await eventually(async () => {
        const job = await progress.getAttribute("data-job");
        return job !== before && (await progress.locator("[data-job-state]").getAttribute("data-job-state")) === "succeeded";
      }, "the renewal job to succeed", 60_000);
    } else {
      await issueDirectly();
    }
    // The page reloads the certificate once the job is done: version 2 is current.
    await eventually(async () => (await page.getByRole("heading", { name: /Current version/ }).textContent()).includes("#2"), "version 2 current", 20_000);

    await page.getByRole("button", { name: "Revoke current version" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("button", { name: "Revoke certificate" }).waitFor();
    assert.match(await dialog.textContent(), new RegExp(`certificates/${certId}/versions/2`));
    await dialog.getByLabel("Reason", { exact: true }).selectOption({ label: "Superseded" });
    await dialog.getByRole("button", { name: "Revoke certificate" }).click();
    // The issuer tells the inventory in the background; the page looks again by itself.
    await eventually(async () => (await page.locator(".page-head .badge").first().getAttribute("data-state")) === "revoked", "the certificate Revoked", 20_000);
    await eventually(async () => /Superseded/.test(await page.locator("[aria-labelledby=versions-h]").textContent()), "the version's reason");
    assertNoConsoleErrors("renew and revoke current version");
  });

  await t.test("revoking from the issued list, with the revoked filter", async () => {
    await page.goto(url("/issuers/local/issued"));
    await page.getByRole("heading", { name: "Issued by local" }).waitFor();
    const rows = page.locator("table.data tbody tr", { hasText: cn });
    await eventually(async () => (await rows.count()) === 2, "both versions in the issued list");
    // Version 1 is still valid; revoke it from the list.
    const row = page.locator("table.data tbody tr", { hasText: `${certId} #1` });
    assert.equal(await row.locator("[data-state]").getAttribute("data-state"), "valid");
    await row.getByRole("button", { name: /^Revoke / }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Reason", { exact: true }).selectOption({ label: "Key compromise" });
    await dialog.getByRole("button", { name: "Revoke certificate" }).click();
    await eventually(async () => (await row.locator("[data-state]").getAttribute("data-state")) === "revoked", "the row to show Revoked");
    assert.match(await row.textContent(), /Key compromise/);

    // The revoked filter lives in the URL and lists both.
    // The box is controlled by the URL, which the router updates after the
    // click: wait for the URL and then the box, instead of `check()`'s
    // immediate assertion.
    await page.getByLabel("Revoked only").click();
    await page.waitForURL(/revoked=1/);
    await eventually(async () => await page.getByLabel("Revoked only").isChecked(), "the filter box checked");
    await eventually(async () => (await page.locator("table.data tbody tr", { hasText: cn }).count()) === 2, "the revoked filter");
    await page.screenshot({ path: join(SHOTS, "issued.png") });
    const tableOverflow = await page.locator(".table-wrap").evaluate((el) => el.scrollWidth - el.clientWidth);
    assert.ok(tableOverflow <= 0, `the issued table overflows by ${tableOverflow}px at 1280 px`);

    // The inventory recorded it on version 1.
    await page.goto(url(`/certificates/${certId}`));
    await eventually(async () => {
      const reasons = await page.getByTestId("version-revoked").allTextContents();
      if (reasons.some((r) => /Key compromise/.test(r))) return true;
      await page.reload();
      await page.locator("[aria-labelledby=versions-h] table tbody tr").first().waitFor();
      return false;
    }, "version 1's revocation reason", 20_000);
    assertNoConsoleErrors("revoke from the issued list");
  });

  await t.test("the dashboard counts failed jobs", fixme, async () => {
    await page.goto(url("/"));
    await eventually(async () => /^(≥)?\d+$/.test((await page.getByTestId("summary-failed-jobs").textContent()).trim()), "a failed-jobs count");
    assertNoConsoleErrors("dashboard failed jobs");
  });
});
