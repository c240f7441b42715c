// Prometheus metrics (prom-client), served at GET /metrics. One registry per gateway, so tests that
// run several gateways in one process do not share counters. Counters move where things happen
// (src/instrument.ts wraps the ports); gauges are read from their sources at scrape time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { LimitName } from "./core/policy/limits.js";

export type Direction = "in" | "out";
export type Channel = "sms" | "webhook";

export interface MetricsSources {
  /** The breaker's state; rejects or undefined when it cannot be read (Redis away). */
  breaker?(): Promise<{ tripped: boolean; used: number } | undefined>;
  queues?(): Promise<{ toXmpp: { depth: number; oldestAgeMs: number }; outbound: { depth: number; oldestAgeMs: number }; deadLetters: number }>;
  journal?(): Promise<{ writable: boolean; pending: number }>;
  xmpp?(): { online: boolean; reconnects: number };
  /** This instance's leases (core/cluster/cluster-member.ts). */
  cluster?(): { live: string[]; link: { heldHere: boolean; token?: number }; partitions: number[] };
}

export function createMetrics(sources: MetricsSources = {}) {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry, prefix: "switchboard_" });
  const read = async <T>(f: (() => Promise<T>) | undefined): Promise<T | undefined> => (f ? f().catch(() => undefined) : undefined);
  // Several gauges show parts of one reading (the queues, the breaker): a scrape reads each source once.
  type Snapshot = { breaker: ReturnType<typeof readBreaker>; queues: ReturnType<typeof readQueues>; journal: ReturnType<typeof readJournal> };
  const readBreaker = () => read(sources.breaker);
  const readQueues = () => read(sources.queues);
  const readJournal = () => read(sources.journal);
  let snapshot: Snapshot | undefined;
  const current = (): Snapshot => snapshot ?? { breaker: readBreaker(), queues: readQueues(), journal: readJournal() };

  const messages = new Counter({
    name: "switchboard_messages_total",
    help: "Messages by direction (in: toward XMPP users, out: from them), channel (sms, webhook) and outcome (accepted, duplicate, unrouted, journaled, refused, delivered, sent, failed, ambiguous, and provider statuses)",
    labelNames: ["direction", "channel", "outcome"] as const,
    registers,
  });
  const providerLatency = new Histogram({
    name: "switchboard_provider_request_duration_seconds",
    help: "Time of one SMS provider create request, by result (ok, permanent, retry, ambiguous)",
    labelNames: ["result"] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
    registers,
  });
  const webhookLatency = new Histogram({
    name: "switchboard_webhook_request_duration_seconds",
    help: "Time of one POST to a webhook target, by result (ok, permanent, retry)",
    labelNames: ["result"] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const providerErrors = new Counter({
    name: "switchboard_provider_errors_total",
    help: "Provider error codes seen (Twilio codes such as 21211, or the HTTP status when there is none)",
    labelNames: ["code"] as const,
    registers,
  });
  const deadLettered = new Counter({ name: "switchboard_dead_letters_total", help: "Items given up on, by queue (to-xmpp, outbound)", labelNames: ["queue"] as const, registers });
  const limitRefusals = new Counter({
    name: "switchboard_limit_refusals_total",
    help: "Messages refused by a limit, by limit (user_rate, user_daily_segments, destination_country, destination_type, short_code, breaker, webhook_in_rate, admin_auth_failures)",
    labelNames: ["limit"] as const,
    registers,
  });
  const breakerTrips = new Counter({ name: "switchboard_breaker_trips_total", help: "Times the gateway-wide segments-per-hour breaker tripped", registers });
  const reconciled = new Counter({
    name: "switchboard_reconciled_total",
    help: "What reconciliation with the provider found, by direction (in: texts in the provider's message list; out: statuses fetched) and outcome (in: ingested, duplicate, unrouted, incomplete; out: applied, unchanged, pending, not_found, gave_up, failed)",
    labelNames: ["direction", "outcome"] as const,
    registers,
  });
  const reconcileRuns = new Counter({
    name: "switchboard_reconcile_runs_total",
    help: "Reconciliation runs started on this instance, by result (ok; partial: an account or the status checks failed; failed; busy: another instance was running one; skipped: another instance ran one recently)",
    labelNames: ["result"] as const,
    registers,
  });
  const reconcileLastOk = new Gauge({
    name: "switchboard_reconcile_last_success_timestamp_seconds",
    help: "When a reconciliation run on this instance last completed without an error (Unix time; 0: not yet)",
    registers,
  });

  new Gauge({
    name: "switchboard_breaker_tripped",
    help: "1 while the gateway-wide breaker stops all sending",
    registers,
    async collect() {
      this.set((await current().breaker)?.tripped ? 1 : 0);
    },
  });
  new Gauge({
    name: "switchboard_breaker_segments_used",
    help: "SMS segments counted by the breaker in its current hour",
    registers,
    async collect() {
      this.set((await current().breaker)?.used ?? 0);
    },
  });
  new Gauge({
    name: "switchboard_queue_depth",
    help: "Items waiting (or in hand) per queue: to-xmpp (toward XMPP users), outbound (toward the provider and webhook targets)",
    labelNames: ["queue"] as const,
    registers,
    async collect() {
      const q = await current().queues;
      if (!q) return;
      this.set({ queue: "to-xmpp" }, q.toXmpp.depth);
      this.set({ queue: "outbound" }, q.outbound.depth);
    },
  });
  new Gauge({
    name: "switchboard_queue_oldest_age_seconds",
    help: "Age of the oldest item per queue (0 when empty)",
    labelNames: ["queue"] as const,
    registers,
    async collect() {
      const q = await current().queues;
      if (!q) return;
      this.set({ queue: "to-xmpp" }, q.toXmpp.oldestAgeMs / 1000);
      this.set({ queue: "outbound" }, q.outbound.oldestAgeMs / 1000);
    },
  });
  new Gauge({
    name: "switchboard_dead_letters",
    help: "Dead letters kept (retryable with the admin API)",
    registers,
    async collect() {
      const q = await current().queues;
      if (q) this.set(q.deadLetters);
    },
  });
  new Gauge({
    name: "switchboard_journal_pending",
    help: "Inbound SMS waiting in the local journal for Redis to come back",
    registers,
    async collect() {
      const j = await current().journal;
      if (j) this.set(j.pending);
    },
  });
  new Gauge({
    name: "switchboard_journal_writable",
    help: "1 when the local journal can take inbound SMS",
    registers,
    async collect() {
      const j = await current().journal;
      this.set(j?.writable ? 1 : 0);
    },
  });
  new Gauge({
    name: "switchboard_xmpp_connected",
    help: "1 while the component link to the XMPP server is online",
    registers,
    collect() {
      this.set(sources.xmpp?.().online ? 1 : 0);
    },
  });
  new Gauge({
    name: "switchboard_xmpp_link_lease_held",
    help: "1 while this instance holds the lease on the XMPP link (exactly one instance of a deployment should)",
    registers,
    collect() {
      this.set(sources.cluster?.().link.heldHere ? 1 : 0);
    },
  });
  new Gauge({
    name: "switchboard_xmpp_link_lease_token",
    help: "Fencing token of the XMPP link lease held here (grows with every new holder; 0 when not held here)",
    registers,
    collect() {
      this.set(sources.cluster?.().link.token ?? 0);
    },
  });
  new Gauge({
    name: "switchboard_outbound_partitions_held",
    help: "Outbound partitions this instance works (their leases held here)",
    registers,
    collect() {
      this.set(sources.cluster?.().partitions.length ?? 0);
    },
  });
  new Gauge({
    name: "switchboard_instances_live",
    help: "Instances of the deployment seen live in Redis at the last heartbeat",
    registers,
    collect() {
      this.set(sources.cluster?.().live.length ?? 0);
    },
  });
  const leasesLost = new Counter({
    name: "switchboard_leases_lost_total",
    help: "Leases this instance lost before giving them back (its work stopped at once), by lease (xmpp-link, outbound)",
    labelNames: ["lease"] as const,
    registers,
  });
  // The connection counts its reconnects itself; the counter follows it at each scrape.
  const reconnects = new Counter({ name: "switchboard_xmpp_reconnects_total", help: "Reconnects of the component link", registers });
  let seenReconnects = 0;
  const syncReconnects = () => {
    const now = sources.xmpp?.().reconnects ?? 0;
    if (now > seenReconnects) reconnects.inc(now - seenReconnects);
    seenReconnects = Math.max(seenReconnects, now);
  };

  return {
    registry,
    async render(): Promise<string> {
      syncReconnects();
      snapshot = { breaker: readBreaker(), queues: readQueues(), journal: readJournal() };
      try {
        return await registry.metrics();
      } finally {
        snapshot = undefined;
      }
    },
    message: (direction: Direction, channel: Channel, outcome: string) => messages.inc({ direction, channel, outcome }),
    providerRequest: (seconds: number, result: string) => providerLatency.observe({ result }, seconds),
    providerError: (code: number | string) => providerErrors.inc({ code: String(code) }),
    webhookRequest: (seconds: number, result: string) => webhookLatency.observe({ result }, seconds),
    deadLettered: (queue: string) => deadLettered.inc({ queue }),
    limitRefused: (limit: LimitName | "webhook_in_rate" | "admin_auth_failures") => limitRefusals.inc({ limit }),
    breakerTripped: () => breakerTrips.inc(),
    leaseLost: (lease: string) => leasesLost.inc({ lease: lease.startsWith("outbound:") ? "outbound" : lease }),
    reconciled: (direction: Direction, outcome: string, n: number) => {
      if (n > 0) reconciled.inc({ direction, outcome }, n);
    },
    reconcileRun: (result: "ok" | "partial" | "failed" | "busy" | "skipped", at = Date.now()) => {
      reconcileRuns.inc({ result });
      if (result === "ok") reconcileLastOk.set(at / 1000);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
