// switchboard reconcile — reconciliation with the provider now (POST /api/v1/reconcile), for an operator
// who knows there was an outage: texts that reached the provider but never the gateway are taken in,
// final statuses that never came are fetched.
import type { Command } from "commander";
import { AdminClient } from "./api-client.js";
import { CliError, EXIT } from "./errors.js";
import type { Action } from "./program.js";

interface Counts {
  listed: number;
  ingested: number;
  duplicate: number;
  unrouted: number;
  incomplete: number;
}

interface Report {
  startedAt: string;
  finishedAt: string;
  complete: boolean;
  inbound: Counts;
  outbound: { checked: number; applied: number; unchanged: number; pending: number; notFound: number; gaveUp: number; failed: number };
  accounts: (Counts & { account: string; since: string; error?: string })[];
  errors: string[];
}

/** A run pages through every account's messages: far longer than an ordinary admin call may take. */
const RUN_TIMEOUT_MS = 10 * 60_000;

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `--since`: a duration back from now (`6h`, `90m`, `1d12h`) or an ISO 8601 date or time
 * (`2026-12-08`, `2026-12-08T09:30:00Z`; without a zone, this machine's time). Returns ms since epoch.
 */
export function parseSince(value: string, now = Date.now()): number {
  const v = value.trim();
  if (/^(\d+[smhd])+$/i.test(v)) {
    let ms = 0;
    for (const [, n, unit] of v.toLowerCase().matchAll(/(\d+)([smhd])/g)) ms += Number(n) * UNITS[unit!]!;
    if (ms === 0) throw new CliError("--since: the duration must be longer than 0", EXIT.usage);
    return now - ms;
  }
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.test(v)) {
    const at = Date.parse(v.replace(" ", "T"));
    if (!Number.isNaN(at)) return at;
  }
  throw new CliError(`--since: ${JSON.stringify(value)} is neither a duration such as 6h, 90m or 1d12h nor a date such as 2026-12-08 or 2026-12-08T09:30:00Z`, EXIT.usage);
}

export function reconcileCommand(program: Command, action: Action): void {
  program
    .command("reconcile")
    .description("ask the SMS provider now for texts the gateway never received and statuses that never came, and take them in")
    .option("--since <when>", "look back to then: a duration (6h, 90m, 1d12h) or a date (2026-12-08, 2026-12-08T09:30:00Z); default: from where the last run got to")
    .addHelpText(
      "after",
      `
The gateway also reconciles by itself at start and every RECONCILE_INTERVAL; use this after an outage
you know of, to look further back than its last run. Texts already received are not delivered again.

Examples:
  switchboard reconcile --since 6h
  switchboard reconcile --since 2026-12-08T09:30:00Z --json`,
    )
    .action(
      action(async (ctx, _args, opts: { since?: string }) => {
        const since = opts.since === undefined ? undefined : new Date(parseSince(opts.since)).toISOString();
        const api = new AdminClient(ctx.url, ctx.token, RUN_TIMEOUT_MS);
        const { data } = await api.request<Report>("POST", "/api/v1/reconcile", since === undefined ? {} : { since });
        const i = data.inbound;
        const o = data.outbound;
        const lines = [
          `inbound: ${i.listed} listed in ${data.accounts.length} account(s): ${i.ingested} taken in, ${i.duplicate} already received, ${i.unrouted} to unlinked numbers${i.incomplete ? `, ${i.incomplete} still being received` : ""}`,
          ...data.accounts.map((a) => `  ${a.account} since ${a.since}: ${a.ingested} taken in of ${a.listed}${a.error ? ` (failed: ${a.error})` : ""}`),
          `statuses: ${o.checked} fetched: ${o.applied} final status applied, ${o.unchanged} unchanged, ${o.pending} not final yet${o.notFound ? `, ${o.notFound} unknown to the provider` : ""}${o.gaveUp ? `, ${o.gaveUp} given up` : ""}${o.failed ? `, ${o.failed} failed` : ""}`,
          ...data.errors.map((e) => `error: ${e}`),
        ];
        ctx.print(data, lines);
        return data.complete ? EXIT.ok : EXIT.failed;
      }),
    );
}
