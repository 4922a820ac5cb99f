// Starts a real `certctl server --demo` for the end-to-end suite and waits for /readyz.
// The API and GUI listen on one free port, the agent hub on another.
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const webDir = fileURLToPath(new URL("..", import.meta.url));
export const repoRoot = resolve(webDir, "..");

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function startServer() {
  const bin = resolve(repoRoot, process.env.CERTCTL_BIN ?? "target/debug/certctl");
  if (!existsSync(bin)) {
    throw new Error(`certctl binary not found at ${bin}: build it (cargo build) or set CERTCTL_BIN`);
  }
  if (!existsSync(join(webDir, "dist", "index.html"))) {
    throw new Error("web/dist/index.html is missing: run `npm --prefix web run build` first");
  }
  const port = await freePort();
  // The agent hub (mTLS) on its own free port, not the default 8444 another server may hold.
  const agentPort = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "certctl-e2e-"));
  const artifacts = join(webDir, "e2e", ".artifacts");
  mkdirSync(artifacts, { recursive: true });
  const logPath = join(artifacts, "server.log");
  const log = createWriteStream(logPath);
  const args = ["server", "--demo", "--listen", `127.0.0.1:${port}`, "--agent-listen", `127.0.0.1:${agentPort}`, "--data-dir", dataDir];
  const child = spawn(bin, args, { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = null;
  child.on("exit", (code, signal) => (exited = { code, signal }));

  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (exited) throw new Error(`certctl server exited early (${JSON.stringify(exited)}); see ${logPath}`);
    try {
      const r = await fetch(`${baseUrl}/readyz`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`certctl server not ready after 120 s; see ${logPath}`);
    }
    await sleep(250);
  }

  return {
    baseUrl,
    /** Where agents enrol and connect (`certctl-agent enroll --server`). */
    agentUrl: `https://127.0.0.1:${agentPort}`,
    logPath,
    async stop() {
      if (!exited) {
        child.kill("SIGTERM");
        for (let i = 0; i < 40 && !exited; i++) await sleep(250);
        if (!exited) child.kill("SIGKILL");
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
