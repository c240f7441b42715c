#!/usr/bin/env node
// Runs the test suite: node --test (through tsx) over test/**/*.test.ts.
// Node 20's --test does not expand globs, so the files are listed here.
//
//   node scripts/run-tests.mjs                 # everything
//   node scripts/run-tests.mjs harness unit/   # files whose path contains any of the filters
//
// Environment: XMPP_SERVER=prosody|ejabberd picks the server for integration tests.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const testDir = join(root, "test");

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

const filters = process.argv.slice(2);
const all = listTests(testDir).sort();
const files = filters.length === 0 ? all : all.filter((f) => filters.some((flt) => f.includes(flt)));

if (files.length === 0) {
  process.stderr.write(
    filters.length === 0
      ? "run-tests: no test files found under test/\n"
      : `run-tests: no test file matches ${filters.map((f) => JSON.stringify(f)).join(", ")}\n`,
  );
  process.exit(1);
}

const args = ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=120000", ...files];
const child = spawn(process.execPath, args, { cwd: root, stdio: "inherit" });

// Ctrl-C reaches the child through the terminal's process group; forward other signals.
for (const sig of ["SIGTERM", "SIGHUP"]) {
  process.on(sig, () => child.kill(sig));
}
process.on("SIGINT", () => {
  /* the child got it too; wait for it to finish */
});

child.on("exit", (code, signal) => {
  if (signal) {
    process.stderr.write(`run-tests: node --test was killed by ${signal}\n`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
