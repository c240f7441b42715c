// Reconciliation with the provider, composed (core/flows/reconcile.ts): over the provider's message log,
// the state every instance shares in Redis, and the webhooks' own accept and status paths. Runs at start
// and every RECONCILE_INTERVAL on each instance (a run gives way to one elsewhere, and skips when another
// instance ran one recently), and when an operator asks (POST /api/v1/reconcile). Each run is counted in
// the metrics and logged once.
import { createRedisReconcileState } from "../adapters/redis/reconcile-state.js";
import type { Redis } from "../adapters/redis/client.js";
import type { Config } from "../config.js";
import { createReconcile, inboundTotals, type ReconcileOutcome, type ReconcileRequest } from "../core/flows/reconcile.js";
import type { Inbound } from "../core/flows/sms-in.js";
import { isGatewayError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { ProviderKit } from "./provider.js";
import type { Stores } from "./stores.js";

/** How long stop() waits for a run in progress to reach a point where it can end. */
const STOP_WAIT_MS = 2000;

export interface Reconciler {
  /** One run now; `since` (ms) from an operator. Throws a GatewayError for a bad `since`. */
  run(req: Omit<ReconcileRequest, "signal">): Promise<ReconcileOutcome>;
  /** The run at start, then one every RECONCILE_INTERVAL (none when it is 0). */
  start(): void;
  /** Ends the schedule and the run in progress (it stops between two messages; nothing half-done). */
  stop(): Promise<void>;
}

export function createReconciler(
  config: Config,
  d: { redis: Redis; stores: Pick<Stores, "links" | "accounts" | "messages">; kit: Pick<ProviderKit, "messageLog">; inbound: Pick<Inbound, "accept" | "applyStatus">; metrics: Metrics; log: Logger },
): Reconciler {
  const log = d.log.child({ sub: "reconcile" });
  const intervalMs = config.RECONCILE_INTERVAL * 1000;
  // Older texts could be delivered twice (their repeat keys are gone) or would be given up on at once.
  const horizonMs = Math.min(config.DEDUPE_TTL * 1000, config.XMPP_DELIVERY_DEADLINE_MS);
  if (config.RECONCILE_LOOKBACK * 1000 > horizonMs) {
    log.warn(
      { lookbackS: config.RECONCILE_LOOKBACK, horizonS: Math.floor(horizonMs / 1000) },
      "RECONCILE_LOOKBACK reaches further back than DEDUPE_TTL or XMPP_DELIVERY_DEADLINE_MS: reconciliation looks back only that far",
    );
  }
  const byo = config.REGISTRATION === "byo" && config.SMS_PROVIDER === "twilio";
  const stopping = new AbortController();
  const flow = createReconcile({
    provider: d.kit.messageLog,
    state: createRedisReconcileState(d.redis, { onRenewError: (err) => log.warn({ err: (err as Error).message }, "renewing the reconciliation lock failed") }),
    links: d.stores.links,
    // Users' own accounts as their webhooks are accepted: only with REGISTRATION=byo.
    ...(byo ? { accountOf: (jid: string) => d.stores.accounts.accountOf(jid) } : {}),
    messages: d.stores.messages,
    accept: (sms) => d.inbound.accept(sms),
    applyStatus: (u) => d.inbound.applyStatus(u),
    settings: { lookbackMs: config.RECONCILE_LOOKBACK * 1000, horizonMs, intervalMs },
    log,
  });

  function record(res: ReconcileOutcome): void {
    if (res.outcome !== "done") {
      d.metrics.reconcileRun(res.outcome);
      log.debug({ outcome: res.outcome }, res.outcome === "busy" ? "reconciliation running on another instance" : "reconciliation ran recently on another instance");
      return;
    }
    const r = res.report;
    const inbound = inboundTotals(r);
    for (const k of ["ingested", "duplicate", "unrouted", "incomplete"] as const) d.metrics.reconciled("in", k, inbound[k]);
    const o = r.outbound;
    for (const [k, n] of [
      ["applied", o.applied],
      ["unchanged", o.unchanged],
      ["pending", o.pending],
      ["not_found", o.notFound],
      ["gave_up", o.gaveUp],
      ["failed", o.failed],
    ] as const)
      d.metrics.reconciled("out", k, n);
    // Texts taken in count as accepted, like those of the webhook (src/instrument.ts).
    for (let i = 0; i < inbound.ingested; i++) d.metrics.message("in", "sms", "accepted");
    d.metrics.reconcileRun(r.errors.length === 0 ? "ok" : "partial", r.finishedAt);
    const summary = { kind: r.kind, accounts: r.accounts.length, inbound, outbound: o, ms: r.finishedAt - r.startedAt, ...(r.errors.length ? { errors: r.errors } : {}) };
    if (r.errors.length) log.warn(summary, "reconciliation with the provider finished with errors");
    else log.info(summary, "reconciliation with the provider finished");
  }

  async function run(req: Omit<ReconcileRequest, "signal">): Promise<ReconcileOutcome> {
    try {
      const res = await flow.run({ ...req, signal: stopping.signal });
      record(res);
      return res;
    } catch (err) {
      if (!(isGatewayError(err) && err.code === "bad_request")) {
        d.metrics.reconcileRun("failed");
        log.warn({ err: err instanceof Error ? err.message : String(err), kind: req.kind }, "reconciliation with the provider failed");
      }
      throw err;
    }
  }

  let timer: NodeJS.Timeout | undefined;
  let current: Promise<unknown> | undefined;
  const tick = (kind: "start" | "periodic"): void => {
    current = run({ kind })
      .catch(() => undefined) // logged and counted in run()
      .finally(() => {
        current = undefined;
        if (stopping.signal.aborted) return;
        // ±10 %: instances started together drift apart instead of all asking at once.
        timer = setTimeout(() => tick("periodic"), Math.round(intervalMs * (0.9 + Math.random() * 0.2)));
        timer.unref();
      });
  };

  return {
    run,
    start() {
      if (intervalMs > 0) tick("start");
    },
    async stop() {
      stopping.abort();
      clearTimeout(timer);
      // The run ends at its next message; a request to the provider in flight is not waited out (its
      // timeout could outlast SHUTDOWN_TIMEOUT_MS): whatever it brings later is idempotent.
      await Promise.race([current, new Promise((r) => setTimeout(r, STOP_WAIT_MS).unref())]);
    },
  };
}
