// Admin API: reconciliation with the provider now (docs/operators/operations.md "Reconciliation with the
// provider"), for an operator who knows there was an outage: `since` reaches further back than the
// cursor the periodic runs keep. Answers once the run is over, with what it found.
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { inboundTotals, type ReconcileOutcome, type ReconcileReport } from "../core/flows/reconcile.js";
import { GatewayError } from "../errors.js";

export interface ReconcileRouteDeps {
  run(req: { kind: "manual"; since?: number }): Promise<ReconcileOutcome>;
}

const counts = { listed: z.number(), ingested: z.number(), duplicate: z.number(), unrouted: z.number(), incomplete: z.number() };

const report = z.object({
  startedAt: z.string(),
  finishedAt: z.string(),
  /** True when every account and every status check was done. */
  complete: z.boolean(),
  inbound: z.object(counts),
  outbound: z.object({ checked: z.number(), applied: z.number(), unchanged: z.number(), pending: z.number(), notFound: z.number(), gaveUp: z.number(), failed: z.number() }),
  accounts: z.array(z.object({ account: z.string(), since: z.string(), ...counts, error: z.string().optional() })),
  errors: z.array(z.string()),
});

const iso = (ms: number) => new Date(ms).toISOString();

export function toView(r: ReconcileReport): z.infer<typeof report> {
  return {
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    complete: r.errors.length === 0,
    inbound: inboundTotals(r),
    outbound: r.outbound,
    accounts: r.accounts.map((a) => ({ ...a, since: iso(a.since) })),
    errors: r.errors,
  };
}

export function reconcileRoute(app: FastifyInstance, deps: ReconcileRouteDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post(
    "/api/v1/reconcile",
    {
      schema: {
        body: z
          .object({
            since: z.iso.datetime({ offset: true }).optional().describe("Look for texts from this moment on (ISO 8601 with a time zone), instead of from where the last run got to"),
          })
          .optional(),
        response: { 200: report },
      },
    },
    async (request) => {
      const since = request.body?.since === undefined ? undefined : Date.parse(request.body.since);
      const res = await deps.run({ kind: "manual", ...(since !== undefined ? { since } : {}) });
      if (res.outcome === "done") return toView(res.report);
      // A manual run is never skipped; only one elsewhere makes it wait.
      throw new GatewayError("conflict", "A reconciliation is running on another instance right now; try again when it ends (usually within a minute).", { retryAfterMs: 30_000 });
    },
  );
}
