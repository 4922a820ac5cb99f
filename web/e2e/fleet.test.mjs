// End-to-end for the fleet: agents, join tokens, deployments and discovery.
// Same harness as gui.test.mjs: a real `certctl server --demo` (with its agent
// hub on a free port) and headless Chromium. A join token is created through
// the GUI and its secret and enrol command checked; when a `certctl-agent`
// binary is at hand (target/debug/certctl-agent or $CERTCTL_AGENT_BIN) the
// command the GUI shows is run for real, the agent turns Online, reports a
// certificate it finds, and that certificate is claimed from Discovery.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { repoRoot, startServer, webDir } from "./server.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = process.env.E2E_SCREENSHOTS ?? join(webDir, "e2e", ".artifacts", "screenshots");
const VIEWPORT = { width: 1280, height: 860 };
const AGENT_BIN = resolve(repoRoot, process.env.CERTCTL_AGENT_BIN ?? "target/debug/certctl-agent");

let server;
let browser;
let page;
let discoveryServed = false;
let deploymentsServed = false;
let agentProc = null;
const scratch = mkdtempSync(join(tmpdir(), "certctl-e2e-fleet-"));
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

/** Splits the GUI's enrol command into argv (it only quotes with '…'). */
function argv(command) {
  const out = [];
  for (const m of command.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)) out.push(m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]);
  return out;
}

before(async () => {
  server = await startServer();
  // The inventory's deployment and discovery RPCs are new; REST answers 200 once they are served.
  discoveryServed = (await fetch(`${server.baseUrl}/api/v1/discoveredCertificates`)).status === 200;
  deploymentsServed = (await fetch(`${server.baseUrl}/api/v1/certificates/-/deployments`)).status === 200;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: VIEWPORT, colorScheme: "dark" });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.baseUrl });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(`${msg.text()} @ ${msg.location().url}`);
  });
  page.on("pageerror", (err) => consoleErrors.push(`page error: ${err.message}`));
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  if (agentProc && agentProc.exitCode === null) agentProc.kill("SIGTERM");
  await browser?.close();
  await server?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

test("fleet views against a real certctl server", { timeout: 300_000 }, async (t) => {
  const url = (path) => `${server.baseUrl}${path}`;
  const haveAgent = existsSync(AGENT_BIN);
  const withAgent = haveAgent ? {} : { skip: `fixme: no certctl-agent binary at ${AGENT_BIN} (cargo build -p certctl-agent, or set CERTCTL_AGENT_BIN)` };
  const agentId = `e2e-${Date.now().toString(36)}`;

  await t.test("the agents page lists the demo's agents with status badges, and filters by status in the URL", async () => {
    await page.goto(url("/"));
    await page.getByRole("link", { name: "Agents", exact: true }).click();
    await page.waitForURL(/\/agents$/);
    await page.getByRole("heading", { name: "Agents", exact: true }).waitFor();
    const rows = page.locator("section[aria-label=Agents] table.data tbody tr");
    await eventually(async () => (await rows.count()) > 0, "agent rows");
    const words = await page.locator("section[aria-label=Agents] [data-agent-status]").allTextContents();
    assert.ok(words.length > 0 && words.every((w) => ["Online", "Stale", "Offline", "Retired"].includes(w.trim())), `status words: ${words}`);
    // The demo's agents never connected: Offline, last seen never.
    await page.getByLabel("Status", { exact: true }).selectOption("offline");
    await page.waitForURL(/status=offline/);
    await eventually(async () => {
      const s = await page.locator("section[aria-label=Agents] [data-agent-status]").allTextContents();
      return s.length > 0 && s.every((w) => w.trim() === "Offline");
    }, "only offline agents");
    await page.goto(url("/agents?status=online"));
    assert.equal(await page.getByLabel("Status", { exact: true }).inputValue(), "online");
    await page.goto(url("/agents"));
    await eventually(async () => (await rows.count()) > 0, "agent rows again");
    assert.equal(await page.locator("[role=alert]").count(), 0, "no error alerts on the agents page");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `page overflows horizontally by ${overflow}px at 1280 px`);
    await page.screenshot({ path: join(SHOTS, "agents.png") });
    assertNoConsoleErrors("agents");
  });

  await t.test("an agent's page shows its targets and identity", async () => {
    const first = page.locator("section[aria-label=Agents] table.data tbody tr td a").first();
    const name = (await first.textContent()).trim();
    await first.click();
    await page.waitForURL(/\/agents\/[^/]+$/);
    await page.getByRole("heading", { name: "Identity" }).waitFor();
    await page.getByRole("heading", { name: "Targets" }).waitFor();
    await eventually(async () => (await page.locator("[aria-labelledby=agent-targets-h] table tbody tr, [aria-labelledby=agent-targets-h] .empty").count()) > 0, "targets or their empty state");
    assert.ok(name.length > 0);
    assertNoConsoleErrors("agent detail");
  });

  let command = "";
  let secret = "";
  await t.test("“Add an agent” creates a join token and shows the secret once, in the enrol command", async () => {
    await page.goto(url("/agents"));
    await page.getByRole("button", { name: "Add an agent" }).first().click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("heading", { name: "Add an agent" }).waitFor();
    // The API's (or the form's) refusal of a bad TTL, under the field.
    await dialog.getByLabel("Valid for (hours)", { exact: true }).fill("9999");
    await dialog.getByRole("button", { name: "Create join token" }).click();
    await eventually(async () => (await dialog.locator(".field.has-error").count()) > 0, "the TTL field marked invalid");
    await dialog.getByLabel("Valid for (hours)", { exact: true }).fill("2");
    await dialog.getByLabel("Agent ID", { exact: true }).fill(agentId);
    await dialog.getByLabel("Description", { exact: true }).fill("e2e agent");
    await dialog.getByLabel("Labels", { exact: true }).fill("env=e2e");
    await dialog.getByRole("button", { name: "Create join token" }).click();
    await dialog.getByText("Shown once.").waitFor();

    secret = (await dialog.getByTestId("join-token-secret").locator("code").textContent()).trim();
    assert.match(secret, /^cjt_[A-Za-z0-9_-]{43}$/, `a join token secret: ${secret}`);
    const authorities = await (await fetch(url("/api/v1/issuers/platform/authorities"))).json();
    const root = authorities.authorities.find((a) => a.role === "root");
    assert.ok(root, "issuers/platform has a root");
    const fp = (root.sha256Fingerprint ?? root.sha256_fingerprint).toLowerCase();
    const enroll = dialog.getByTestId("enroll-command");
    const expected = (server) => `certctl-agent enroll --server ${server} --ca-fingerprint ${fp} --token ${secret}`;
    await eventually(async () => (await enroll.textContent()) === expected("https://127.0.0.1:8444"), "the enrol command with this host, the platform CA fingerprint and the secret");
    // This server's hub is on another port: the command follows the field.
    await dialog.getByLabel("Agent server URL", { exact: true }).fill(server.agentUrl);
    await eventually(async () => (await enroll.textContent()) === expected(server.agentUrl), "the command with the edited agent server");
    command = await enroll.textContent();
    await dialog.getByRole("button", { name: "Copy enroll command" }).click();
    const copied = await page.evaluate(() => navigator.clipboard.readText().catch(() => ""));
    if (copied) assert.equal(copied, command, "the copy button copies the whole command");
    await page.screenshot({ path: join(SHOTS, "agents-enroll.png") });
    await dialog.getByRole("button", { name: /I have copied it/ }).click();
    await eventually(async () => (await page.getByRole("dialog").count()) === 0 || !(await page.getByRole("dialog").isVisible()), "the dialog to close");
    assert.equal(await page.getByText(secret).count(), 0, "the secret is gone once the dialog closes");

    // The token list shows it, unused, with its description and reserved agent id.
    const row = page.locator("[aria-labelledby=tokens-h] tbody tr", { hasText: "e2e agent" });
    await eventually(async () => (await row.count()) === 1, "the new join token in the list");
    assert.equal(await row.locator("[data-token-state]").getAttribute("data-token-state"), "unused");
    assert.match(await row.textContent(), new RegExp(agentId));
    assertNoConsoleErrors("join token");
  });

  await t.test("the GUI's enrol command enrols a real agent, which turns Online", withAgent, async () => {
    const args = argv(command);
    assert.equal(args[0], "certctl-agent");
    const stateDir = join(scratch, "agent-state");
    execFileSync(AGENT_BIN, ["--state-dir", stateDir, ...args.slice(1), "--hostname", "e2e-host.example.com"], { stdio: "pipe", timeout: 60_000 });
    // A certificate on the host for discovery to find.
    const certs = join(scratch, "certs");
    mkdirSync(certs, { recursive: true });
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "20", "-subj", "/CN=found.e2e.example.com/O=E2E", "-addext", "subjectAltName=DNS:found.e2e.example.com", "-keyout", join(certs, "found.key"), "-out", join(certs, "found.pem")], { stdio: "pipe" });
    agentProc = spawn(AGENT_BIN, ["--state-dir", stateDir, "run", "--discover", certs], { stdio: "ignore" });

    await page.goto(url(`/agents/${agentId}`));
    await page.getByRole("heading", { name: "Identity" }).waitFor();
    await eventually(
      async () => {
        await page.reload();
        await page.getByRole("heading", { name: "Identity" }).waitFor();
        return (await page.locator(".page-head [data-agent-status]").textContent()).trim() === "Online";
      },
      "the enrolled agent Online",
      45_000,
    );
    assert.match(await page.getByTestId("identity-expiry").textContent(), /^in /);
    assert.match(await page.locator("dt:text-is('Host') + dd").textContent(), /e2e-host\.example\.com/);
    await page.screenshot({ path: join(SHOTS, "agent-detail.png") });
    // The token is now used, by this agent.
    await page.goto(url("/agents"));
    const row = page.locator("[aria-labelledby=tokens-h] tbody tr", { hasText: "e2e agent" });
    await eventually(async () => (await row.locator("[data-token-state]").getAttribute("data-token-state")) === "used", "the token marked used");
    assertNoConsoleErrors("enrolled agent");
  });

  await t.test("the discovery page lists what agents found (NEW by default), and claims one", async () => {
    await page.getByRole("link", { name: "Discovery", exact: true }).click();
    await page.waitForURL(/\/discovery$/);
    await page.getByRole("heading", { name: "Discovery", exact: true }).waitFor();
    assert.equal(await page.getByLabel("State", { exact: true }).inputValue(), "new");
    if (!discoveryServed) {
      // The page says the server does not serve it, with the API's message.
      await page.getByText("Discovery is not served by this server yet").waitFor();
      t.diagnostic("fixme: ListDiscoveredCertificates is not served by this certctl build yet; claim step skipped");
      assertNoConsoleErrors("discovery (not served)");
      return;
    }
    const found = page.locator("tbody tr", { hasText: "found.e2e.example.com" });
    if (!haveAgent) {
      await eventually(async () => (await page.locator("section[aria-label='Discovered certificates'] table, section[aria-label='Discovered certificates'] .empty").count()) > 0, "the list or its empty state");
      assertNoConsoleErrors("discovery");
      return;
    }
    await eventually(
      async () => {
        if ((await found.count()) === 1) return true;
        await page.reload();
        await page.getByRole("heading", { name: "Discovery", exact: true }).waitFor();
        return false;
      },
      "the agent's discovered certificate",
      45_000,
    );
    assert.match(await found.textContent(), new RegExp(`${agentId}:.*found\\.pem`));
    const scroll = await page.locator("section[aria-label='Discovered certificates'] .table-wrap").evaluate((el) => el.scrollWidth - el.clientWidth);
    assert.ok(scroll <= 0, `the discovery table scrolls sideways by ${scroll}px at 1280 px`);
    await page.screenshot({ path: join(SHOTS, "discovery.png") });
    await found.getByRole("button", { name: /^Claim / }).click();
    const dialog = page.getByRole("dialog");
    // An invalid id: the API's message, under the field.
    await dialog.getByLabel("Certificate ID", { exact: true }).fill("Not Valid!");
    await dialog.getByRole("button", { name: "Claim certificate" }).click();
    await dialog.getByRole("alert").waitFor();
    assert.doesNotMatch(await dialog.getByRole("alert").textContent(), /something went wrong/i);
    const claimId = `found-${agentId}`;
    await dialog.getByLabel("Certificate ID", { exact: true }).fill(claimId);
    await dialog.getByRole("button", { name: "Claim certificate" }).click();
    await eventually(async () => (await found.count()) === 0, "the claimed certificate to leave the New list");
    await page.goto(url("/discovery?state=claimed"));
    await page.locator("tbody tr", { hasText: "found.e2e.example.com" }).getByRole("link", { name: claimId }).click();
    await page.waitForURL(new RegExp(`/certificates/${claimId}$`));
    assertNoConsoleErrors("discovery claim");
  });

  await t.test("a certificate's page has a Deployments section", async () => {
    // www is deployed to the demo's web-01-nginx and web-02-apache targets.
    await page.goto(url("/certificates/www"));
    await page.getByRole("heading", { name: "Deployments" }).waitFor();
    const panel = page.locator("[aria-labelledby=deployments-h]");
    if (!deploymentsServed) {
      await panel.getByText("Deployments are not served by this server yet").waitFor();
    } else {
      await eventually(async () => (await panel.locator("tbody tr").count()) >= 2, "a row per target (a record, or “No record”)");
    }
    await panel.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, "certificate-deployments.png") });
    assertNoConsoleErrors("deployments");
  });

  await t.test("the dashboard counts agents online and offline", async () => {
    await page.goto(url("/"));
    await eventually(async () => /^(≥)?\d+$/.test((await page.getByTestId("summary-agents-online").textContent()).trim()), "an agents-online count");
    const offline = await eventually(async () => (await page.getByTestId("summary-agents-offline").textContent()).trim(), "the offline count");
    assert.match(offline, /^(≥)?\d+ offline · (≥)?\d+ stale$/);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `dashboard overflows horizontally by ${overflow}px with the agents card`);
    await page.screenshot({ path: join(SHOTS, "dashboard-agents.png") });
    assertNoConsoleErrors("dashboard agents card");
  });

  await t.test("retiring an agent asks first, naming the consequence", async () => {
    // The enrolled agent when there is one, else a demo agent.
    const target = haveAgent ? agentId : "web-01";
    await page.goto(url(`/agents/${target}`));
    await page.getByRole("heading", { name: "Identity" }).waitFor();
    await page.getByRole("button", { name: "Retire" }).click();
    const dialog = page.getByRole("dialog");
    assert.match(await dialog.textContent(), /its identity is refused from now on/i);
    await dialog.getByRole("button", { name: "Retire agent" }).click();
    await eventually(async () => (await page.locator(".page-head [data-agent-status]").textContent()).trim() === "Retired", "the agent Retired");
    assert.equal(await page.getByRole("button", { name: "Retire" }).count(), 0, "no Retire button on a retired agent");
    await page.goto(url("/agents?status=retired"));
    await page.locator("section[aria-label=Agents] tbody tr", { hasText: target }).waitFor();
    assertNoConsoleErrors("retire");
  });
});
