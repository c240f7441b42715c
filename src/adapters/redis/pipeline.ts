// The durable pipeline on Redis streams: one stream per direction and partition, one consumer group.
//
// Why this shape: a conversation always hashes to the same partition and a partition is worked by one
// loop, so a conversation's messages leave in the order they were accepted while others go on in
// parallel. A consumer reads at most BATCH entries at a time and reads no more while the next hop is
// away, so memory stays flat however long the backlog. An entry is acknowledged, and then deleted
// (that is the trimming rule: nothing unacknowledged is ever trimmed), only once its handler finished
// and, toward XMPP, once a barrier proved the server processed it. Until then it stays in the group's
// pending list: a restart of the same consumer resumes it, and XAUTOCLAIM hands work a dead consumer
// left to a live one.
import { createHash } from "node:crypto";
import { follow } from "../../core/abort.js";
import { createBounceRetries } from "../../core/bounces.js";
import { remembered } from "../../core/remembered.js";
import { deliveryKey, type OutboundJob, type XmppDelivery } from "../../core/message.js";
import { GiveUp, RetryLater, type DeadLetter, type DedupeKey, type DeliveryMeta, type Pipeline, type XmppSink } from "../../core/ports.js";
import type { Logger } from "../../logger.js";
import { duplicateForBlocking, isRedisUnavailable, type Redis } from "./client.js";
import { DEAD_LETTER_MAX, GROUP, keys } from "./keys.js";
import { runScript } from "./scripts.js";

// KEYS: seen marker, stream, legacy marker (or the marker again). ARGV: ttl, payload, item id, "1" when only
// a marker holding one of our ids (a ULID) counts. 1 = stored, 0 = seen before (nothing stored). The
// marker holds the first item's id, so a repeated request can be told which id it got.
const ENQUEUE_ONCE = `
local seen = redis.call('GET', KEYS[1])
if seen and (ARGV[4] ~= '1' or (string.len(seen) == 26 and string.match(seen, '^[0-9A-HJKMNP-TV-Z]+$'))) then return 0 end
if KEYS[3] ~= KEYS[1] and redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[1])
redis.call('XADD', KEYS[2], '*', 'd', ARGV[2])
return 1
`;

// Toward the provider a job is queued only once its message record exists: the record is written just
// before, on the same connection (so in order) and without waiting for it, and a job without one would be
// dropped by its sender, after its repeat key was taken.
// KEYS: message record, seen marker (or the record again when none), stream. ARGV: ttl, payload, item id,
// 1 when there is a seen marker. 1 = stored, 0 = seen before (nothing stored), -1 = no record.
const ENQUEUE_OUTBOUND = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[4] == '1' and not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[3], '*', 'd', ARGV[2])
return 1
`;

// An entry leaves its stream for the dead letters: deleted, acknowledged and added there in one step,
// and only if it is still in its stream. So an entry another consumer finished meanwhile (or one
// already dead-lettered by deadLetterWhere) is never dead-lettered as well.
// KEYS: stream, dead letters. ARGV: group, entry id, stream name, queue, reason, at, payload, cap.
// 1 = moved, 0 = no longer in the stream.
const MOVE_TO_DEAD = `
if redis.call('XDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', 'stream', ARGV[3], 'queue', ARGV[4], 'reason', ARGV[5], 'at', ARGV[6], 'd', ARGV[7])
return 1
`;

const BATCH = 32;
/**
 * Toward XMPP a batch costs one barrier (a round trip through the XMPP server) and one acknowledgement
 * whatever its size, so under load a partition takes more at a time: the round trips are shared by more
 * messages. An idle partition still reads what is there as soon as it arrives.
 */
const TO_XMPP_BATCH = 256;
/**
 * Batches toward XMPP whose barrier is still out when the next batch is read: the next batch does not
 * wait for the round trip through the server (a conversation's stanzas still leave in order, on one
 * connection, and each batch is acknowledged once its own barrier has proven it).
 */
const TO_XMPP_UNPROVEN_BATCHES = 2;
/**
 * `flush` called once for all the items handed in during one turn of the event loop (a batch's jobs
 * finish at about the same time: one command for them instead of one each). Each caller's promise
 * settles with that flush.
 */
function coalesced<T, R>(flush: (items: T[]) => Promise<R>): (item: T) => Promise<R> {
  let waiting: { items: T[]; done: Promise<R> } | undefined;
  return (item) => {
    if (!waiting) {
      const items: T[] = [];
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        waiting = undefined;
        return flush(items);
      });
      waiting = { items, done };
    }
    waiting.items.push(item);
    return waiting.done;
  };
}

const BACKLOG_REFRESH_MS = 100;

/** The conversation a delivery toward XMPP belongs to: its order is kept, and it waits as a whole after a bounce. */
function conversationOf(item: XmppDelivery): string {
  return `${item.to.split("/")[0]}|${item.from}`;
}

/** Entries read at a time when a whole stream is scanned (deadLetterWhere). */
const SCAN_BATCH = 200;

export interface PipelineOptions {
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
  /** Dead letters older than this are trimmed (DEAD_LETTER_RETENTION); undefined: kept (up to DEAD_LETTER_MAX). */
  deadLetterRetentionS?: number;
  /** How often the dead letters are trimmed while consuming (default: the retention, at most hourly). */
  deadLetterSweepMs?: number;
}

interface Entry {
  id: string;
  message: Record<string, string>;
}

/** What a partition's loop hands its batches to. */
interface BatchProcessor {
  /** Handles a batch; false: something must be tried again (the loop re-reads its pending entries). */
  process(entries: Entry[], firstTry: boolean): Promise<boolean>;
  /** True when work handed on by an earlier batch failed since (checked before each read). */
  failedMeanwhile?(): boolean;
  /** Waits for work still settling; resolves false if any of it failed. */
  drain?(): Promise<boolean>;
  /** Ends the waits that are over (entries held back after a bounce); true when the pending entries must be read again. */
  releaseDue?(now: number): boolean;
  /** When the next such wait ends (a blocking read waits no longer), if any. */
  nextRelease?(): number | undefined;
}

type Handlers = Parameters<Pipeline["consume"]>[0];

export type RedisPipeline = Pipeline & {
  /** Ends the current backoff waits: the next hop is back. */
  wake(): void;
  /** Deletes dead letters older than deadLetterRetentionS (it also runs periodically); returns how many. */
  trimDeadLetters(now?: number): Promise<number>;
  /** What waits in each queue (all partitions) and for how long, and how many dead letters are kept (metrics). */
  stats(now?: number): Promise<QueueStats>;
};

export interface QueueStats {
  toXmpp: { depth: number; oldestAgeMs: number };
  outbox: { depth: number; oldestAgeMs: number };
  deadLetters: number;
}

export function createRedisPipeline(redis: Redis, log: Logger, opts: PipelineOptions): RedisPipeline {
  const blockMs = opts.blockMs ?? 2000;
  const maxFailures = opts.maxFailures ?? 5;
  const bounceRetry = { maxBounces: opts.maxBounces ?? 5, baseMs: opts.bounceRetryMs ?? 5000, maxMs: opts.bounceRetryMaxMs ?? 600_000 };
  const deadlineMs = opts.toXmppDeadlineMs ?? 3 * 86400_000;
  const claimIdleMs = opts.claimIdleMs ?? 60_000;
  const retry = opts.retryDelayMs ?? { min: 250, max: 15_000 };
  const readers: Redis[] = [];
  const loops: Promise<void>[] = [];
  let running = false;
  let stopping = new AbortController();
  let wakeup = new AbortController();
  let deadLetterSweeper: NodeJS.Timeout | undefined;
  /** Outbound jobs in hand here, by "stream id": deadLetterWhere ends their waits at once. */
  const inHand = new Map<string, AbortController>();
  const ensured = new Set<string>();

  // A SHA-1 per message cost more than the rest of the enqueue; a conversation's partition never changes.
  const partitionOf = remembered((conversation: string) => createHash("sha1").update(conversation).digest().readUInt32BE(0) % opts.partitions);

  async function ensureGroup(stream: string): Promise<void> {
    if (ensured.has(stream)) return;
    try {
      await redis.xGroupCreate(stream, GROUP, "0", { MKSTREAM: true });
    } catch (err) {
      if (!String((err as Error).message).includes("BUSYGROUP")) throw err;
    }
    ensured.add(stream);
  }

  function toXmppStream(item: XmppDelivery): string {
    return keys.toXmppStream(partitionOf(conversationOf(item)));
  }

  // The backlog of a partition toward XMPP, asked of Redis at most every BACKLOG_REFRESH_MS and counted
  // up here meanwhile: an overload check per request without a round trip per request. Entries
  // delivered meanwhile are not subtracted, so between refreshes it errs on the side of "busy".
  const backlogs = new Map<string, { count: number; at: number }>();
  async function backlogFor(item: XmppDelivery): Promise<number> {
    const stream = toXmppStream(item);
    const known = backlogs.get(stream);
    if (known && Date.now() - known.at < BACKLOG_REFRESH_MS) return known.count;
    const count = await redis.xLen(stream);
    backlogs.set(stream, { count, at: Date.now() });
    return count;
  }

  async function enqueueToXmpp(item: XmppDelivery, dedupe?: DedupeKey): Promise<boolean> {
    const stream = toXmppStream(item);
    const payload = JSON.stringify(item);
    let stored = true;
    if (dedupe === undefined) await redis.xAdd(stream, "*", { d: payload });
    else {
      const marker = keys.seen(dedupe.key);
      stored =
        (await runScript(redis, ENQUEUE_ONCE, {
          keys: [marker, stream, dedupe.legacy === undefined ? marker : keys.seen(dedupe.legacy)],
          arguments: [String(opts.dedupeTtlS), payload, item.id, dedupe.ownIdsOnly ? "1" : "0"],
        })) === 1;
    }
    const backlog = backlogs.get(stream);
    if (stored && backlog) backlog.count++;
    return stored;
  }

  async function enqueueOutbound(job: OutboundJob, dedupeKey?: string): Promise<boolean> {
    const stream = keys.outboxStream(partitionOf(`${job.from}|${job.to}`));
    const record = keys.message(job.id);
    const res = await runScript(redis, ENQUEUE_OUTBOUND, {
      keys: [record, dedupeKey === undefined ? record : keys.seen(dedupeKey), stream],
      arguments: [String(opts.dedupeTtlS), JSON.stringify(job), job.id, dedupeKey === undefined ? "0" : "1"],
    });
    if (res === -1) throw new Error(`outbound job ${job.id} has no message record; not queued`);
    return res === 1;
  }

  /** Waits, but returns at once when the pipeline stops or is woken (the next hop came back). */
  function delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const stop = stopping.signal;
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

  async function ack(stream: string, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await redis.multi().xAck(stream, GROUP, ids).xDel(stream, ids).exec();
  }

  /** Moves an entry from its stream to the dead letters; false when it had already left the stream. */
  async function moveToDead(stream: string, queue: DeadLetter["queue"], entry: Entry, reason: string, at: number): Promise<boolean> {
    const moved = await runScript(redis, MOVE_TO_DEAD, {
      keys: [stream, keys.deadLetters],
      arguments: [GROUP, entry.id, stream, queue, reason, String(at), entry.message.d ?? "", String(DEAD_LETTER_MAX)],
    });
    return moved === 1;
  }

  async function deadLetter(handlers: Handlers, stream: string, queue: DeadLetter["queue"], entry: Entry, reason: string): Promise<void> {
    const at = Date.now();
    if (!(await moveToDead(stream, queue, entry, reason, at))) {
      log.warn({ stream, entry: entry.id }, "entry already left its stream; not dead-lettered");
      return;
    }
    log.error({ stream, entry: entry.id, reason }, "dead-lettered");
    const item = parse<XmppDelivery | OutboundJob>(entry);
    if (item && handlers.onDeadLetter) {
      await handlers.onDeadLetter({ id: entry.id, queue, reason, at, item }).catch((err: unknown) => log.error({ err }, "dead-letter hook failed"));
    }
  }

  /** A row of the dead-letters stream as a DeadLetter; undefined when its item cannot be read. */
  function deadLetterOf(row: { id: string; message: Record<string, string> }): DeadLetter | undefined {
    const m = row.message;
    const item = parse<XmppDelivery | OutboundJob>(row);
    return item && { id: row.id, queue: m.queue === "outbound" ? "outbound" : "to-xmpp", reason: m.reason ?? "", at: Number(m.at ?? 0), item };
  }

  function parse<T>(entry: Entry): T | undefined {
    try {
      return JSON.parse(entry.message.d ?? "") as T;
    } catch {
      return undefined;
    }
  }

  /**
   * One partition: read our own pending entries first (from "0": left by a crash, a stop, a failure or
   * held back after a bounce), moving through them batch by batch, then new ones (">"). After a failure,
   * go back to "0" so the failed entry comes first again.
   */
  async function work(stream: string, batch: number, processor: BatchProcessor): Promise<void> {
    try {
      await workLoop(stream, batch, processor);
    } finally {
      // Work still settling (toward XMPP: barriers and acknowledgements) finishes before the loop ends.
      await processor.drain?.();
    }
  }

  async function workLoop(stream: string, batch: number, processor: BatchProcessor): Promise<void> {
    const reader = duplicateForBlocking(redis, blockMs);
    reader.on("error", (err: Error) => log.debug({ err: err.message, stream }, "redis reader error"));
    readers.push(reader);
    let cursor = "0";
    let wait = retry.min;
    let lastClaim = 0;
    while (running) {
      if (processor.failedMeanwhile?.()) {
        // Something handed on earlier was not proven: read our own pending entries again, after a wait.
        await processor.drain?.();
        cursor = "0";
        await delay(wait);
        wait = Math.min(retry.max, wait * 2);
        continue;
      }
      // Entries held back after a bounce whose wait is over: read the pending entries again, in order.
      if (processor.releaseDue?.(Date.now())) cursor = "0";
      const release = processor.nextRelease?.();
      const block = release === undefined ? blockMs : Math.max(1, Math.min(blockMs, release - Date.now()));
      let entries: Entry[];
      try {
        if (!reader.isOpen) {
          await reader.connect();
          // Stopped while connecting: node-redis would keep a client destroyed mid-connect reconnecting.
          if (!running) {
            reader.destroy();
            return;
          }
        }
        await ensureGroup(stream);
        const res = await reader.xReadGroup(GROUP, opts.consumerName, { key: stream, id: cursor }, { COUNT: batch, ...(cursor === ">" ? { BLOCK: block } : {}) });
        entries = ((res as { messages: (Entry | null)[] }[] | null)?.[0]?.messages ?? []).filter((e): e is Entry => e !== null);
      } catch (err) {
        if (!running) return;
        log.warn({ err: (err as Error).message, stream }, "stream read failed; retrying");
        // A read whose reply was lost (Redis died or the link broke after it ran) left entries pending
        // for us that we never saw: read our own pending list first, instead of waiting for XAUTOCLAIM.
        cursor = "0";
        await delay(1000);
        continue;
      }
      if (entries.length === 0) {
        if (cursor !== ">") cursor = ">"; // our pending entries are all read: new ones now
        else if (Date.now() - lastClaim > claimIdleMs / 2) {
          lastClaim = Date.now();
          if (await claimAbandoned(stream)) cursor = "0";
        }
        continue;
      }
      let ok: boolean;
      try {
        ok = await processor.process(entries, cursor === ">");
      } catch (err) {
        log.error({ err, stream }, "pipeline batch failed");
        ok = false;
      }
      if (ok) {
        wait = retry.min;
        // Reading our pending entries: the next read starts after this batch. Reading from "0" again
        // would hand back entries still in hand (toward XMPP, written and waiting for their barrier).
        if (cursor !== ">") cursor = entries[entries.length - 1]!.id;
      } else {
        cursor = "0";
        await delay(wait);
        wait = Math.min(retry.max, wait * 2);
      }
    }
  }

  /** Takes over entries a consumer that died left pending for longer than claimIdleMs. */
  async function claimAbandoned(stream: string): Promise<boolean> {
    try {
      const res = await redis.xAutoClaimJustId(stream, GROUP, opts.consumerName, claimIdleMs, "0-0", { COUNT: BATCH });
      const claimed = (res as { messages: unknown[] }).messages.length;
      if (claimed > 0) log.warn({ stream, claimed }, "claimed work another consumer left");
      return claimed > 0;
    } catch (err) {
      log.warn({ err: (err as Error).message, stream }, "autoclaim failed");
      return false;
    }
  }

  function toXmppBatch(handlers: Handlers, stream: string): BatchProcessor {
    const failures = new Map<string, number>();
    const bounces = createBounceRetries(bounceRetry);
    const sink: XmppSink = handlers.toXmpp;
    /** Batches written and not yet proven by their barrier (oldest first). */
    const unproven: Promise<boolean>[] = [];
    /**
     * Entries written and not yet settled by their barrier. A read of our pending entries returns them
     * too (they stay pending until proven): they are never written a second time while in hand.
     */
    const inHandHere = new Set<string>();
    let failed = false;

    /** The barrier of one batch, then its acknowledgement. False: some of it must be delivered again. */
    async function settle(sent: { entry: Entry; item: XmppDelivery }[]): Promise<boolean> {
      try {
        let bounced: Map<string, string>;
        try {
          bounced = await sink.barrier();
        } catch (err) {
          // Unproven: leave them pending. They go out again with the same stanza ids (the documented
          // window for a same-id repeat).
          log.warn({ err: (err as Error).message, stream, count: sent.length }, "XMPP barrier failed; deliveries will be repeated");
          return false;
        }
        const done: string[] = [];
        for (const { entry, item } of sent) {
          const reason = bounced.get(deliveryKey(item));
          failures.delete(entry.id);
          if (reason === undefined) {
            bounces.forget(entry.id);
            done.push(entry.id);
            continue;
          }
          const verdict = bounces.bounced(entry.id, conversationOf(item));
          log.warn({ msgId: item.id, kind: item.kind, reason, bounces: verdict.bounces, ...(verdict.deadLetter ? {} : { retryInMs: verdict.retryAt - Date.now() }) }, "XMPP server bounced a delivery");
          // Otherwise it stays pending, and its conversation waits (core/bounces.ts).
          if (verdict.deadLetter) await deadLetter(handlers, stream, "to-xmpp", entry, `bounced by the XMPP server ${verdict.bounces} times: ${reason}`);
        }
        await ack(stream, done);
        return true;
      } finally {
        for (const { entry } of sent) inHandHere.delete(entry.id);
      }
    }

    async function drain(): Promise<boolean> {
      const results = await Promise.all(unproven.splice(0));
      const ok = !failed && results.every(Boolean);
      failed = false;
      return ok;
    }

    async function process(entries: Entry[], firstTry: boolean): Promise<boolean> {
      const sent: { entry: Entry; item: XmppDelivery }[] = [];
      let ok = true;
      for (const entry of entries) {
        if (!running) {
          ok = false;
          break;
        }
        if (inHandHere.has(entry.id)) continue; // written, waiting for its barrier
        const item = parse<XmppDelivery>(entry);
        if (!item) {
          await deadLetter(handlers, stream, "to-xmpp", entry, "unreadable entry");
          continue;
        }
        // Waiting after a bounce, with the rest of its conversation: read again when the wait is over.
        if (bounces.isHeld(conversationOf(item))) continue;
        if (item.kind === "chat" && Date.now() - item.acceptedAt > deadlineMs) {
          bounces.forget(entry.id);
          await deadLetter(handlers, stream, "to-xmpp", entry, `not delivered to XMPP within ${Math.round(deadlineMs / 60_000)} minutes`);
          continue;
        }
        const attempt = (firstTry ? 1 : 2) + (failures.get(entry.id) ?? 0) + bounces.count(entry.id);
        try {
          await sink.deliver(item, { attempt, signal: stopping.signal });
          inHandHere.add(entry.id);
          sent.push({ entry, item });
        } catch (err) {
          if (err instanceof RetryLater || isRedisUnavailable(err)) {
            ok = false;
            break;
          }
          if (err instanceof GiveUp) {
            failures.delete(entry.id);
            await deadLetter(handlers, stream, "to-xmpp", entry, err.message);
            continue;
          }
          const n = (failures.get(entry.id) ?? 0) + 1;
          failures.set(entry.id, n);
          log.error({ err, stream, entry: entry.id, msgId: item.id }, "delivery toward XMPP failed");
          if (n >= maxFailures) {
            failures.delete(entry.id);
            await deadLetter(handlers, stream, "to-xmpp", entry, (err as Error).message);
            continue;
          }
          ok = false;
          break;
        }
      }
      if (sent.length > 0) {
        const settling = settle(sent);
        // Noted when it happens, so that the loop reads its pending entries again even while idle.
        settling.then(
          (good) => void (good || (failed = true)),
          (err: unknown) => {
            failed = true;
            log.error({ err, stream }, "acknowledging deliveries failed");
          },
        );
        unproven.push(settling.catch(() => false));
      }
      // Before reading again after a failure, everything handed on must have settled: the pending
      // entries read next are then exactly those still to deliver.
      while (ok && unproven.length > TO_XMPP_UNPROVEN_BATCHES) ok = await unproven.shift()!;
      if (!ok) await drain();
      return ok;
    }

    return { process, drain, failedMeanwhile: () => failed, releaseDue: (now) => bounces.releaseDue(now), nextRelease: () => bounces.nextRelease() };
  }

  function outboundBatch(handlers: Handlers, stream: string): BatchProcessor {
    const failures = new Map<string, number>();
    const ackSoon = coalesced((ids: string[]) => ack(stream, ids));
    // Which entries are still pending (ours): claiming them again says so without taking anything.
    const stillPending = async (ids: string[]) => new Set(await redis.xClaimJustId(stream, GROUP, opts.consumerName, 0, ids));
    const claimSoon = coalesced(stillPending);

    /**
     * One job; false stops its conversation (and fails the batch, which is read again after a backoff).
     * `claimed`: what the batch's claim said of it just now; undefined when it has to be claimed here.
     */
    async function handleOne(entry: Entry, job: OutboundJob | undefined, firstTry: boolean, claimed: boolean | undefined): Promise<boolean> {
      if (!running) return false;
      if (!job) {
        await deadLetter(handlers, stream, "outbound", entry, "unreadable entry");
        return true;
      }
      // Read in a batch, it may have left the stream since (dead-lettered by deadLetterWhere): claiming
      // it again (it is ours) says whether it is still pending.
      if (!(claimed ?? (await claimSoon(entry.id)).has(entry.id))) {
        failures.delete(entry.id);
        log.info({ stream, entry: entry.id, msgId: job.id }, "job left its stream before it was handled; skipped");
        return true;
      }
      // Aborted when the entry leaves the stream while in hand (dead-lettered by deadLetterWhere, here or
      // on another instance): the handler's waits end and the job is not tried again.
      const gone = new AbortController();
      const handKey = `${stream} ${entry.id}`;
      inHand.set(handKey, gone);
      // The handler's signal: the entry gone, or the pipeline stopping (released when the job ends).
      const handling = follow([stopping.signal, gone.signal]);
      const meta: DeliveryMeta = { attempt: (firstTry ? 1 : 2) + (failures.get(entry.id) ?? 0), signal: handling.signal };
      // A long provider backoff must not look abandoned to other consumers. Claiming nothing means
      // the entry is no longer pending: it left the stream.
      const heartbeat = setInterval(() => {
        redis.xClaimJustId(stream, GROUP, opts.consumerName, 0, entry.id).then(
          (ids) => void (ids.length === 0 && gone.abort()),
          () => undefined,
        );
      }, Math.max(1000, claimIdleMs / 3));
      try {
        await handlers.outbound(job, meta);
      } catch (err) {
        if (!running) return false; // stopped mid-way: stays pending for the next start
        if (gone.signal.aborted) {
          failures.delete(entry.id);
          log.info({ stream, entry: entry.id, msgId: job.id }, "job left its stream while in hand (dead-lettered); not tried again");
          return true;
        }
        // The next hop or Redis is away, which is no fault of the job: try again later.
        if (err instanceof RetryLater || isRedisUnavailable(err)) return false;
        if (err instanceof GiveUp) {
          failures.delete(entry.id);
          await deadLetter(handlers, stream, "outbound", entry, err.message);
          return true;
        }
        const n = (failures.get(entry.id) ?? 0) + 1;
        failures.set(entry.id, n);
        log.error({ err, stream, entry: entry.id, msgId: job.id }, "outbound job failed");
        if (n < maxFailures) return false;
        failures.delete(entry.id);
        await deadLetter(handlers, stream, "outbound", entry, (err as Error).message);
        return true;
      } finally {
        clearInterval(heartbeat);
        inHand.delete(handKey);
        handling.release();
      }
      failures.delete(entry.id);
      await ackSoon(entry.id);
      return true;
    }

    // Only a conversation's order matters: its jobs go one after the other, while the batch's other
    // conversations go at the same time (a provider round trip each would otherwise bound a partition
    // to one message per round trip). A job that must wait stops its own conversation only.
    const process = async (entries: Entry[], firstTry: boolean): Promise<boolean> => {
      const conversations = new Map<string, { entry: Entry; job: OutboundJob | undefined }[]>();
      for (const entry of entries) {
        const job = parse<OutboundJob>(entry);
        const key = job ? `${job.from}|${job.to}` : entry.id;
        const list = conversations.get(key);
        if (list) list.push({ entry, job });
        else conversations.set(key, [{ entry, job }]);
      }
      // The first job of each conversation starts now: one claim for all of them says which are still
      // pending. A job that waits behind another of its conversation is claimed when its turn comes.
      const firsts = [...conversations.values()].map((list) => list[0]!.entry.id);
      const pending = await stillPending(firsts);
      const outcomes = await Promise.all(
        [...conversations.values()].map(async (list) => {
          for (const [i, { entry, job }] of list.entries()) {
            if (!(await handleOne(entry, job, firstTry, i === 0 ? pending.has(entry.id) : undefined))) return false;
          }
          return true;
        }),
      );
      return outcomes.every(Boolean);
    };
    return { process };
  }

  async function trimDeadLetters(now = Date.now()): Promise<number> {
    if (opts.deadLetterRetentionS === undefined) return 0;
    // Stream ids start with the time they were added (ms): MINID drops every entry older than that.
    const trimmed = await redis.xTrim(keys.deadLetters, "MINID", String(now - opts.deadLetterRetentionS * 1000));
    if (trimmed > 0) log.info({ trimmed }, "dead letters past DEAD_LETTER_RETENTION deleted");
    return trimmed;
  }

  return {
    enqueueToXmpp,
    enqueueOutbound,
    trimDeadLetters,
    async idForDedupeKey(key) {
      const v = await redis.get(keys.seen(key));
      return v && v !== "1" ? v : undefined;
    },
    backlogFor,
    wake() {
      wakeup.abort();
      wakeup = new AbortController();
    },
    consume(handlers) {
      running = true;
      stopping = new AbortController();
      if (opts.deadLetterRetentionS !== undefined) {
        const sweep = () => void trimDeadLetters().catch((err: unknown) => log.warn({ err: (err as Error).message }, "dead-letter trim failed"));
        sweep();
        deadLetterSweeper = setInterval(sweep, opts.deadLetterSweepMs ?? Math.min(opts.deadLetterRetentionS * 1000, 3600_000));
        deadLetterSweeper.unref();
      }
      for (let p = 0; p < opts.partitions; p++) {
        if (!opts.holdToXmpp) {
          const s = keys.toXmppStream(p);
          loops.push(work(s, TO_XMPP_BATCH, toXmppBatch(handlers, s)).catch((err: unknown) => log.error({ err }, "to-xmpp loop died")));
        }
        const o = keys.outboxStream(p);
        loops.push(work(o, BATCH, outboundBatch(handlers, o)).catch((err: unknown) => log.error({ err }, "outbox loop died")));
      }
    },
    async stop() {
      running = false;
      stopping.abort();
      clearInterval(deadLetterSweeper);
      // Blocked reads end at once; work in hand finishes (or returns to the queue) before this resolves.
      for (const r of readers) r.destroy();
      await Promise.allSettled(loops);
      readers.length = 0;
      loops.length = 0;
    },
    async deadLetters(limit) {
      const rows = await redis.xRevRange(keys.deadLetters, "+", "-", { COUNT: limit });
      return (rows ?? []).map((row) => deadLetterOf({ id: row.id, message: row.message as Record<string, string> })).filter((dl): dl is DeadLetter => dl !== undefined);
    },
    async deadLetterWhere(select) {
      let moved = 0;
      for (let p = 0; p < opts.partitions; p++) {
        for (const [stream, queue] of [[keys.toXmppStream(p), "to-xmpp"], [keys.outboxStream(p), "outbound"]] as const) {
          // In batches: healthy streams are short, but a backlog (XMPP away for a day) need not be read at once.
          let start = "-";
          for (;;) {
            const rows = (await redis.xRange(stream, start, "+", { COUNT: SCAN_BATCH })) ?? [];
            for (const row of rows) {
              const entry: Entry = { id: row.id, message: row.message as Record<string, string> };
              const item = parse<XmppDelivery | OutboundJob>(entry);
              const reason = item && select(queue, item);
              if (!reason) continue;
              if (await moveToDead(stream, queue, entry, reason, Date.now())) {
                moved++;
                inHand.get(`${stream} ${entry.id}`)?.abort();
                log.info({ stream, entry: entry.id, msgId: item.id, reason }, "dead-lettered");
              }
            }
            if (rows.length < SCAN_BATCH) break;
            start = `(${rows[rows.length - 1]!.id}`;
          }
        }
      }
      return moved;
    },
    async retryDeadLetter(id, refuse) {
      const rows = await redis.xRange(keys.deadLetters, id, id);
      const row = rows?.[0];
      if (!row) return { outcome: "not-found" };
      const m = row.message as Record<string, string>;
      const dl = deadLetterOf({ id: row.id, message: m });
      if (!m.stream || !m.d || !dl) return { outcome: "not-found" };
      const reason = refuse ? await refuse(dl) : undefined;
      if (reason !== undefined) return { outcome: "refused", reason };
      await redis.multi().xAdd(m.stream, "*", { d: m.d }).xDel(keys.deadLetters, id).exec();
      log.info({ deadLetter: id, stream: m.stream }, "dead letter queued again");
      return { outcome: "queued" };
    },
    async stats(now = Date.now()) {
      // Entries leave their stream when acknowledged, so length = waiting + in hand, and the first
      // entry's id (its arrival time in ms) dates the oldest.
      const queue = async (streamOf: (p: number) => string) => {
        const m = redis.multi();
        for (let p = 0; p < opts.partitions; p++) m.xLen(streamOf(p)).xRange(streamOf(p), "-", "+", { COUNT: 1 });
        const replies = (await m.exec()) as unknown[];
        let depth = 0;
        let oldest = now;
        for (let i = 0; i < replies.length; i += 2) {
          depth += Number(replies[i]);
          const first = (replies[i + 1] as { id: string }[] | null)?.[0];
          if (first) oldest = Math.min(oldest, Number(first.id.split("-")[0]));
        }
        return { depth, oldestAgeMs: depth > 0 ? Math.max(0, now - oldest) : 0 };
      };
      const [toXmpp, outbox, deadLetters] = await Promise.all([queue(keys.toXmppStream), queue(keys.outboxStream), redis.xLen(keys.deadLetters)]);
      return { toXmpp, outbox, deadLetters };
    },
  };
}
