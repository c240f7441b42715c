#!/usr/bin/env node
// The `switchboard` admin CLI (package.json "bin"): see docs/operators/operations.md "The switchboard CLI" and program.ts.
import { runCli } from "./program.js";

const code = await runCli(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
});
// Let stdout drain (a pipe may be slow), then leave even if a socket lingers.
process.exitCode = code;
process.stdout.write("", () => process.exit(code));
