// switchboard doctor [--fix]: checks the configuration, Redis, the component link, Twilio and the
// numbers' webhooks, and prints each check as ok / FAIL with the fix. See docs/operators/operations.md "doctor".
// The checks (and the SDKs they need) are loaded only when doctor runs.
import type { Command } from "commander";
import { CliError, EXIT } from "../errors.js";
import type { Action } from "../program.js";
import type { Check } from "./types.js";

export function formatChecks(checks: Check[]): string[] {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines: string[] = [];
  for (const c of checks) {
    const mark = c.skipped ? "skip" : c.ok ? "ok" : "FAIL";
    lines.push(`${mark.padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`);
    const indent = " ".repeat(4 + 2 + width + 2);
    if (c.fixed) lines.push(`${indent}fixed: ${c.fixed}`);
    if (!c.ok && c.fix) lines.push(`${indent}fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  lines.push("", failed === 0 ? "all checks passed" : `${failed} check${failed === 1 ? "" : "s"} failed`);
  return lines;
}

export function doctorCommand(program: Command, action: Action): void {
  program
    .command("doctor")
    .description("check the configuration, Redis, the XMPP component link, Twilio and the numbers' webhooks; print each check with its fix")
    .option("--fix", "point linked numbers' messaging webhooks at PUBLIC_URL/twilio/sms through the Twilio API, then check again")
    .option("--timeout <ms>", "timeout of each network check", "5000")
    .addHelpText(
      "after",
      `
Run it where the gateway's environment or .env is: it reads the gateway's configuration like the gateway
does, and asks the gateway at --url (SWITCHBOARD_URL) for what only it knows (/readyz, the linked users).
While a gateway answers there, doctor never opens a component connection of its own; with none running it
tests the handshake itself. Exit code 1 when any check fails.

Examples:
  switchboard doctor
  switchboard doctor --fix
  switchboard doctor --json --url https://sms.example.com`,
    )
    .action(
      action(async (ctx, _args, opts: { fix?: boolean; timeout: string }) => {
        const timeoutMs = Number(opts.timeout);
        if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 120_000) throw new CliError("--timeout must be a number of milliseconds from 100 to 120000", EXIT.usage);
        const { runDoctor } = await import("./run.js");
        const checks = await runDoctor(ctx, { fix: opts.fix === true, timeoutMs });
        const allOk = checks.every((c) => c.ok);
        ctx.print({ ok: allOk, checks }, formatChecks(checks));
        return allOk ? 0 : 1;
      }),
    );
}
