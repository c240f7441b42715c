#!/usr/bin/env node
// Runs the test suite: node --test (through tsx) over test/**/*.test.ts.
// Node 20's --test does not expand globs, so the files are listed here.
//
//   node scripts/run-tests.mjs                 # everything
//   node scripts/run-tests.mjs harness unit/   # files whose path contains any of the filters
//
// XMPP servers. XMPP_SERVERS (default "prosody ejabberd"; XMPP_SERVER=x alone means just x) lists
// the servers the integration tests run against. The first server's pass runs every selected file
// (unit tests, the interop matrix, integration tests) with XMPP_SERVER set to it; each further
// server's pass runs again the selected integration tests that start an XMPP server
// (test/integration/ files calling startXmppServer or startSmsStack), with XMPP_SERVER set to that server. The passes
// run one after the other.
// The interop matrix (test/interop/) always runs on both servers itself.
//
// TEST_CONCURRENCY (default 2) is the number of test files each pass runs at once.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const testDir = join(root, "test");
const KNOWN_SERVERS = ["prosody", "ejabberd"];

function listTests(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listTests(full));
    else if (entry.isFile() && entry.name.endsWith(".test.ts")) out.push(relative(root, full).split(sep).join("/"));
  }
  return out;
}

/** an integration test whose outcome depends on the XMPP server (it starts one, itself or through the stack fixture) */
function dependsOnServer(file) {
  if (!file.startsWith("test/integration/")) return false;
  const text = readFileSync(join(root, file), "utf8");
  return text.includes("startXmppServer(") || text.includes("startSmsStack(");
}

const filters = process.argv.slice(2);
const all = listTests(testDir).sort();
const files = filters.length === 0 ? all : all.filter((f) => filters.some((flt) => f.includes(flt)));

if (files.length === 0) {
  process.stderr.write(filters.length === 0 ? "run-tests: no test files found under test/\n" : `run-tests: no test file matches ${filters.map((f) => JSON.stringify(f)).join(", ")}\n`);
  process.exit(1);
}

const servers = (process.env.XMPP_SERVERS ?? process.env.XMPP_SERVER ?? KNOWN_SERVERS.join(" ")).split(/[\s,]+/).filter(Boolean);
const unknown = servers.filter((s) => !KNOWN_SERVERS.includes(s));
if (servers.length === 0 || unknown.length > 0) {
  process.stderr.write(`run-tests: unknown XMPP server ${JSON.stringify(unknown.join(" "))} in XMPP_SERVERS (known: ${KNOWN_SERVERS.join(", ")})\n`);
  process.exit(1);
}
const serverFiles = files.filter(dependsOnServer);
const passes = [{ server: servers[0], files }];
for (const server of servers.slice(1)) {
  if (serverFiles.length > 0) passes.push({ server, files: serverFiles });
}

const concurrency = Number(process.env.TEST_CONCURRENCY ?? 2);
// the interop matrix writes its table here; it is printed again after the summary
const matrixDir = mkdtempSync(join(tmpdir(), "sb-run-tests-"));
const matrixFile = join(matrixDir, "interop-matrix.txt");
const reporter = process.stdout.isTTY ? ["--test-reporter=spec"] : [];
const children = new Set();

function runPass(pass, streamed) {
  const args = ["--import", "tsx", "--test", `--test-concurrency=${concurrency}`, "--test-timeout=120000", ...reporter, ...pass.files];
  const started = Date.now();
  const child = spawn(process.execPath, args, {
    cwd: root,
    // buffered passes keep the colours of the terminal they are printed to
    env: { ...process.env, XMPP_SERVER: pass.server, INTEROP_MATRIX_FILE: matrixFile, ...(process.stdout.isTTY && !streamed ? { FORCE_COLOR: "1" } : {}) },
    stdio: streamed ? "inherit" : ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let output = "";
  if (!streamed) {
    child.stdout.setEncoding("utf8").on("data", (d) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (output += d));
  }
  return new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      children.delete(child);
      resolve({ ...pass, code, signal, output, seconds: (Date.now() - started) / 1000 });
    });
  });
}

// Ctrl-C reaches the children through the terminal's process group; forward other signals.
for (const sig of ["SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    for (const c of children) c.kill(sig);
  });
}
process.on("SIGINT", () => {
  /* the children got it too; wait for them to finish */
});

const describe = (p) => `${p.server}: ${p.files.length} file(s)${p === passes[0] ? "" : " (integration tests that start an XMPP server)"}`;
process.stderr.write(`run-tests: ${passes.map(describe).join("; ")}; one after the other\n`);

// One pass after the other: on a 2-core machine two passes at once make timing-sensitive tests flaky.
const results = [];
for (const [i, p] of passes.entries()) {
  if (i > 0) process.stdout.write(`\n# ---- XMPP server: ${p.server} (${p.files.length} file(s)) ----\n`);
  results.push(await runPass(p, true));
}

let failed = false;
const lines = results.map((r) => {
  const ok = r.code === 0 && !r.signal;
  if (!ok) failed = true;
  return `  ${r.server.padEnd(9)} ${ok ? "passed" : r.signal ? `killed by ${r.signal}` : `FAILED (exit ${r.code})`}  ${r.files.length} file(s) in ${r.seconds.toFixed(1)} s`;
});
process.stderr.write(`run-tests: summary\n${lines.join("\n")}\n`);
try {
  process.stderr.write(readFileSync(matrixFile, "utf8"));
} catch {
  /* the matrix did not run (filtered out, or it failed before printing) */
}
rmSync(matrixDir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
