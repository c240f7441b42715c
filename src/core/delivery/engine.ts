// The delivery engine: every message the gateway accepted waits in a durable queue until its next hop
// has it, in order per conversation, with attempts, backoff, bounces, a deadline and dead letters. It
// implements the Delivery port (../ports.ts) over the narrow queue port (queues.ts); the store behind it
// is an adapter (adapters/redis/queues.ts; adapters/memory/queues.ts in unit tests).
//
// Why this shape: a conversation always hashes to the same partition and a partition is worked by one
// loop (partition-loop.ts), so a conversation's messages leave in the order they were accepted while
// others go on in parallel. A consumer reads at most a batch at a time and reads no more while the next
// hop is away, so memory stays flat however long the backlog. An entry is acknowledged (and then
// removed) only once its handler finished and, toward XMPP, once a barrier proved the server processed
// it (to-xmpp.ts). Until then it stays pending: a restart of the same consumer resumes it, and another
// consumer claims what a dead one left.
import { createHash } from "node:crypto";
import { setMaxListeners } from "node:events";
import { remembered } from "../util/remembered.js";
import type { OutboundJob, XmppDelivery } from "../model/message.js";
import type { DeadLetter, DedupeKey, Delivery } from "../ports.js";
import type { BounceRetryOptions } from "./bounces.js";
import { parseEntry, type DeliveryLog, type Handlers, type ProcessorContext } from "./context.js";
import { outboundBatches } from "./outbound.js";
import { runPartition } from "./partition-loop.js";
import type { DeadLetterRow, DeliveryQueues, QueueEntry, QueueName } from "./queues.js";
import { conversationOutbound, conversationToXmpp, DEFAULT_RULES, type DeliveryRules } from "./rules.js";
import { toXmppBatches } from "./to-xmpp.js";

/** Entries read at a time toward the provider. */
const BATCH = 32;
/**
 * Toward XMPP a batch costs one barrier (a round trip through the XMPP server) and one acknowledgement
 * whatever its size, so under load a partition takes more at a time: the round trips are shared by more
 * messages. An idle partition still reads what is there as soon as it arrives.
 */
const TO_XMPP_BATCH = 256;
/** How long a partition's backlog (the overload check of the message-in API) is answered from memory. */
const BACKLOG_REFRESH_MS = 100;
/** Entries read at a time when a whole queue is scanned (deadLetterWhere). */
const SCAN_BATCH = 200;

export interface DeliveryOptions {
  partitions: number;
  dedupeTtlS: number;
  /** Stable per instance (a restart resumes its own pending entries). */
  consumerName: string;
  /** Tries of a handler that fails with something other than RetryLater before dead-lettering. */
  maxFailures?: number;
  /** The bounce by the XMPP server (e.g. unknown user) that makes a delivery a dead letter. */
  maxBounces?: number;
  /** Wait after a delivery's first bounce before it is written again; each further bounce waits three times longer. */
  bounceRetryMs?: number;
  /** Cap of one wait after a bounce. */
  bounceRetryMaxMs?: number;
  /** Toward XMPP, an item still undelivered this long after acceptance is dead-lettered. */
  toXmppDeadlineMs?: number;
  /** Entries another consumer left idle this long are claimed. */
  claimIdleMs?: number;
  blockMs?: number;
  retryDelayMs?: { min: number; max: number };
  /** Test hook: consumers toward XMPP do not start (messages are accepted and wait). */
  holdToXmpp?: boolean;
  /** Dead letters older than this are trimmed (DEAD_LETTER_RETENTION); undefined: kept (up to the store's cap). */
  deadLetterRetentionS?: number;
  /** How often the dead letters are trimmed while consuming (default: the retention, at most hourly). */
  deadLetterSweepMs?: number;
}

export interface QueueStats {
  toXmpp: { depth: number; oldestAgeMs: number };
  outbound: { depth: number; oldestAgeMs: number };
  deadLetters: number;
}

export type DeliveryEngine = Delivery & {
  /** Ends the current backoff waits: the next hop is back. */
  wake(): void;
  /** Partitions per queue. */
  readonly partitions: number;
  /**
   * Starts working one partition (after `consume`); `takeOver`: first claims every entry pending there for
   * any consumer (its last worker is known to have stopped: it lost or gave back the partition's lease).
   */
  startWorking(queue: QueueName, partition: number, opts?: { takeOver?: boolean }): Promise<void>;
  /** Stops working one partition: work in hand finishes (or returns to the queue) before this resolves. */
  stopWorking(queue: QueueName, partition: number): Promise<void>;
  /** Deletes dead letters older than deadLetterRetentionS (it also runs periodically); returns how many. */
  trimDeadLetters(now?: number): Promise<number>;
  /** What waits in each queue (all partitions) and for how long, and how many dead letters are kept (metrics). */
  stats(now?: number): Promise<QueueStats>;
};

export function createDeliveryEngine(queues: DeliveryQueues, log: DeliveryLog, opts: DeliveryOptions): DeliveryEngine {
  const rules: DeliveryRules = {
    maxFailures: opts.maxFailures ?? DEFAULT_RULES.maxFailures,
    toXmppDeadlineMs: opts.toXmppDeadlineMs ?? DEFAULT_RULES.toXmppDeadlineMs,
    retryDelayMs: opts.retryDelayMs ?? DEFAULT_RULES.retryDelayMs,
  };
  const bounceRetry: BounceRetryOptions = { maxBounces: opts.maxBounces ?? 5, baseMs: opts.bounceRetryMs ?? 5000, maxMs: opts.bounceRetryMaxMs ?? 600_000 };
  const blockMs = opts.blockMs ?? 2000;
  const claimIdleMs = opts.claimIdleMs ?? 60_000;
  /** The partitions worked here, by "queue partition": each loop can be stopped on its own. */
  const loops = new Map<string, { stop(): Promise<void>; done: Promise<void>; stopping: boolean }>();
  let handlers: Handlers | undefined;
  // Every partition's loop waits on it while the next hop is away (two per partition): more than
  // EventTarget's default of 10 listeners is expected, not a leak.
  const wakeSignal = () => {
    const c = new AbortController();
    setMaxListeners(0, c.signal);
    return c;
  };
  let wakeup = wakeSignal();
  let deadLetterSweeper: NodeJS.Timeout | undefined;
  /** Outbound jobs in hand here, by "partition id": deadLetterWhere ends their waits at once. */
  const inHand = new Map<string, AbortController>();

  // A SHA-1 per message cost more than the rest of the enqueue; a conversation's partition never changes.
  const partitionOf = remembered((conversation: string) => createHash("sha1").update(conversation).digest().readUInt32BE(0) % opts.partitions);

  // The backlog of a partition toward XMPP, asked of the store at most every BACKLOG_REFRESH_MS and
  // counted up here meanwhile: an overload check per request without a round trip per request. Entries
  // delivered meanwhile are not subtracted, so between refreshes it errs on the side of "busy".
  const backlogs = new Map<number, { count: number; at: number }>();
  async function backlogFor(item: XmppDelivery): Promise<number> {
    const partition = partitionOf(conversationToXmpp(item));
    const known = backlogs.get(partition);
    if (known && Date.now() - known.at < BACKLOG_REFRESH_MS) return known.count;
    const count = await queues.length("to-xmpp", partition);
    backlogs.set(partition, { count, at: Date.now() });
    return count;
  }

  async function enqueueToXmpp(item: XmppDelivery, dedupe?: DedupeKey): Promise<boolean> {
    const partition = partitionOf(conversationToXmpp(item));
    const stored = await queues.add("to-xmpp", partition, JSON.stringify(item), dedupe && { ...dedupe, itemId: item.id, ttlS: opts.dedupeTtlS });
    const backlog = backlogs.get(partition);
    if (stored && backlog) backlog.count++;
    return stored;
  }

  async function enqueueOutbound(job: OutboundJob, dedupeKey?: string): Promise<boolean> {
    const partition = partitionOf(conversationOutbound(job));
    const res = await queues.addJob(partition, JSON.stringify(job), job.id, dedupeKey === undefined ? undefined : { key: dedupeKey, itemId: job.id, ttlS: opts.dedupeTtlS });
    if (res === "no-record") throw new Error(`outbound job ${job.id} has no message record; not queued`);
    return res === "stored";
  }

  /** Waits, but returns at once when the loop stops or the engine is woken (the next hop came back). */
  function delay(ms: number, stop: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = wakeup.signal;
      // Listeners are removed on every path: the stop signal lives as long as the process.
      const done = () => {
        clearTimeout(t);
        stop.removeEventListener("abort", done);
        wake.removeEventListener("abort", done);
        resolve();
      };
      const t = setTimeout(done, ms);
      stop.addEventListener("abort", done, { once: true });
      wake.addEventListener("abort", done, { once: true });
    });
  }

  function deadLetterOf(row: DeadLetterRow): DeadLetter | undefined {
    const item = parseEntry<XmppDelivery | OutboundJob>(row);
    return item && { id: row.id, queue: row.queue, reason: row.reason, at: row.at, item };
  }

  function processorContext(handlers: Handlers, stop: AbortSignal): ProcessorContext {
    return {
      queues,
      handlers,
      consumer: opts.consumerName,
      rules,
      claimIdleMs,
      log,
      inHand,
      isRunning: () => !stop.aborted,
      stopSignal: () => stop,
      async deadLetter(queue: QueueName, partition: number, entry: QueueEntry, reason: string) {
        const at = Date.now();
        if (!(await queues.moveToDead(queue, partition, entry, reason, at))) {
          log.warn({ queue, partition, entry: entry.id }, "entry already left its queue; not dead-lettered");
          return;
        }
        log.error({ queue, partition, entry: entry.id, reason }, "dead-lettered");
        const item = parseEntry<XmppDelivery | OutboundJob>(entry);
        if (item && handlers.onDeadLetter) {
          await handlers.onDeadLetter({ id: entry.id, queue, reason, at, item }).catch((err: unknown) => log.error({ err }, "dead-letter hook failed"));
        }
      },
    };
  }

  async function trimDeadLetters(now = Date.now()): Promise<number> {
    if (opts.deadLetterRetentionS === undefined) return 0;
    const trimmed = await queues.trimDeadLetters(now - opts.deadLetterRetentionS * 1000);
    if (trimmed > 0) log.info({ trimmed }, "dead letters past DEAD_LETTER_RETENTION deleted");
    return trimmed;
  }

  async function startWorking(queue: QueueName, partition: number, startOpts: { takeOver?: boolean } = {}): Promise<void> {
    if (!handlers) throw new Error("startWorking before consume");
    if (queue === "to-xmpp" && opts.holdToXmpp) return;
    const key = `${queue} ${partition}`;
    for (let before = loops.get(key); before; before = loops.get(key)) {
      if (!before.stopping) return; // worked here already
      // Still stopping (a lease lost and taken back): the new loop starts once the old one is done.
      await before.done;
      if (loops.get(key) === before) loops.delete(key);
    }
    const stop = new AbortController();
    const readers: { close(): void }[] = [];
    const ctx = processorContext(handlers, stop.signal);
    const loopCtx = {
      queues,
      consumer: opts.consumerName,
      rules,
      blockMs,
      claimIdleMs,
      batch: queue === "to-xmpp" ? TO_XMPP_BATCH : BATCH,
      claimBatch: BATCH,
      isRunning: () => !stop.signal.aborted,
      delay: (ms: number) => delay(ms, stop.signal),
      track: (r: { close(): void }) => void readers.push(r),
      log,
      takeOver: startOpts.takeOver === true,
    };
    const processor = queue === "to-xmpp" ? toXmppBatches(ctx, partition, bounceRetry) : outboundBatches(ctx, partition);
    const done = runPartition(loopCtx, queue, partition, processor).catch((err: unknown) => log.error({ err, queue, partition }, "delivery loop died"));
    const loop = {
      done,
      stopping: false,
      async stop() {
        loop.stopping = true;
        stop.abort();
        // A blocked read ends at once; work in hand finishes (or returns to the queue) before this resolves.
        for (const r of readers) r.close();
        await done;
        if (loops.get(key) === loop) loops.delete(key);
      },
    };
    loops.set(key, loop);
  }

  return {
    enqueueToXmpp,
    enqueueOutbound,
    trimDeadLetters,
    idForDedupeKey: (key) => queues.marker(key),
    backlogFor,
    wake() {
      wakeup.abort();
      wakeup = wakeSignal();
    },
    partitions: opts.partitions,
    consume(given, consumeOpts = {}) {
      handlers = given;
      if (opts.deadLetterRetentionS !== undefined) {
        clearInterval(deadLetterSweeper);
        const sweep = () => void trimDeadLetters().catch((err: unknown) => log.warn({ err: (err as Error).message }, "dead-letter trim failed"));
        sweep();
        deadLetterSweeper = setInterval(sweep, opts.deadLetterSweepMs ?? Math.min(opts.deadLetterRetentionS * 1000, 3600_000));
        deadLetterSweeper.unref();
      }
      if (consumeOpts.manual) return;
      for (let p = 0; p < opts.partitions; p++) {
        void startWorking("to-xmpp", p);
        void startWorking("outbound", p);
      }
    },
    startWorking,
    async stopWorking(queue, partition) {
      await loops.get(`${queue} ${partition}`)?.stop();
    },
    async stop() {
      clearInterval(deadLetterSweeper);
      await Promise.allSettled([...loops.values()].map((l) => l.stop()));
    },
    async deadLetters(limit) {
      return (await queues.deadLetters(limit)).map(deadLetterOf).filter((dl): dl is DeadLetter => dl !== undefined);
    },
    async deadLetterWhere(select) {
      let moved = 0;
      for (let p = 0; p < opts.partitions; p++) {
        for (const queue of ["to-xmpp", "outbound"] as const) {
          // In batches: healthy queues are short, but a backlog (XMPP away for a day) need not be read at once.
          let after: string | undefined;
          for (;;) {
            const entries = await queues.scan(queue, p, after, SCAN_BATCH);
            for (const entry of entries) {
              const item = parseEntry<XmppDelivery | OutboundJob>(entry);
              const reason = item && select(queue, item);
              if (!reason) continue;
              if (await queues.moveToDead(queue, p, entry, reason, Date.now())) {
                moved++;
                inHand.get(`${p} ${entry.id}`)?.abort();
                log.info({ queue, partition: p, entry: entry.id, msgId: item.id, reason }, "dead-lettered");
              }
            }
            if (entries.length < SCAN_BATCH) break;
            after = entries[entries.length - 1]!.id;
          }
        }
      }
      return moved;
    },
    async retryDeadLetter(id, refuse) {
      const row = await queues.deadLetter(id);
      const dl = row && deadLetterOf(row);
      if (!dl) return { outcome: "not-found" };
      const reason = refuse ? await refuse(dl) : undefined;
      if (reason !== undefined) return { outcome: "refused", reason };
      if (!(await queues.requeue(id))) return { outcome: "not-found" };
      log.info({ deadLetter: id, queue: dl.queue }, "dead letter queued again");
      return { outcome: "queued" };
    },
    async stats(now = Date.now()) {
      const age = (d: { depth: number; oldestAt?: number }) => ({ depth: d.depth, oldestAgeMs: d.depth > 0 && d.oldestAt !== undefined ? Math.max(0, now - d.oldestAt) : 0 });
      const [toXmpp, outbound, deadLetters] = await Promise.all([queues.depth("to-xmpp", opts.partitions), queues.depth("outbound", opts.partitions), queues.deadLetterCount()]);
      return { toXmpp: age(toXmpp), outbound: age(outbound), deadLetters };
    },
  };
}
