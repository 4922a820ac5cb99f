// Generates the TypeScript API clients from ../proto with buf + protoc-gen-es.
//   node scripts/gen.mjs          regenerate src/gen
//   node scripts/gen.mjs --check  regenerate into a temp dir and fail if src/gen differs
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const webDir = fileURLToPath(new URL("..", import.meta.url));
const buf = join(webDir, "node_modules", ".bin", "buf");
const check = process.argv.includes("--check");

function run(args) {
  execFileSync(buf, args, { cwd: webDir, stdio: "inherit" });
}

function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const entry of readdirSync(d)) {
      const p = join(d, entry);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  try {
    walk(dir);
  } catch (e) {
    if (e.code !== "ENOENT") throw e;
  }
  return out.sort();
}

if (!check) {
  run(["generate"]);
  console.log("generated src/gen");
  process.exit(0);
}

const tmp = mkdtempSync(join(tmpdir(), "certctl-gen-"));
try {
  run(["generate", "--output", tmp]);
  const fresh = join(tmp, "src", "gen");
  const committed = join(webDir, "src", "gen");
  const a = listFiles(fresh);
  const b = listFiles(committed);
  const problems = [];
  for (const f of a) {
    if (!b.includes(f)) problems.push(`missing: src/gen/${f}`);
    else if (!readFileSync(join(fresh, f)).equals(readFileSync(join(committed, f))))
      problems.push(`stale: src/gen/${f}`);
  }
  for (const f of b) if (!a.includes(f)) problems.push(`extra: src/gen/${f}`);
  if (problems.length) {
    console.error("Generated code is out of date with proto/. Run `npm --prefix web run gen` and commit.");
    for (const p of problems) console.error("  " + p);
    process.exit(1);
  }
  console.log(`src/gen is up to date (${a.length} files)`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
