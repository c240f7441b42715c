// The durable pipeline on Redis streams: one stream per direction and partition, one consumer group.
// A conversation always hashes to the same partition and a partition is worked by one loop at a time,
// so a conversation's messages leave in the order they were accepted while others go on in parallel.
// An entry is acknowledged (and then deleted: that is the trimming rule) only after its handler
// finished; until then it stays in the group's pending list and survives a crash.
import { createHash } from "node:crypto";
import type { OutboundJob, XmppDelivery } from "../../core/message.js";
import { RetryLater, type DeliveryMeta, type Pipeline } from "../../core/ports.js";
import type { Logger } from "../../logger.js";
import type { Redis } from "./client.js";
import { DEAD_LETTER_MAX, GROUP, keys } from "./keys.js";


// KEYS: seen marker, stream. ARGV: ttl, payload. 1 = stored, 0 = seen before (nothing stored).
const ENQUEUE_ONCE = `
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'd', ARGV[2])
  return 1
end
return 0
`;

export interface PipelineOptions {
  partitions: number;
  dedupeTtlS: number;
  consumerName: string;
  /** Tries of a handler that fails with something other than RetryLater before dead-lettering. */
  maxFailures?: number;
  blockMs?: number;
  retryDelayMs?: { min: number; max: number };
}

export function createRedisPipeline(redis: Redis, log: Logger, opts: PipelineOptions): Pipeline & { depth(): Promise<{ toXmpp: number; outbox: number }> } {
  const blockMs = opts.blockMs ?? 2000;
  const maxFailures = opts.maxFailures ?? 5;
  const retry = opts.retryDelayMs ?? { min: 250, max: 15_000 };
  const readers: Redis[] = [];
  const loops: Promise<void>[] = [];
  let running = false;
  let stopping = new AbortController();
  const ensured = new Set<string>();

  function partitionOf(conversation: string): number {
    const h = createHash("sha1").update(conversation).digest();
    return h.readUInt32BE(0) % opts.partitions;
  }

  async function ensureGroup(stream: string): Promise<void> {
    if (ensured.has(stream)) return;
    try {
      await redis.xGroupCreate(stream, GROUP, "0", { MKSTREAM: true });
    } catch (err) {
      if (!String((err as Error).message).includes("BUSYGROUP")) throw err;
    }
    ensured.add(stream);
  }

  async function enqueueToXmpp(item: XmppDelivery, dedupeKey?: string): Promise<boolean> {
    const stream = keys.toXmppStream(partitionOf(`${item.to.split("/")[0]}|${item.from}`));
    const payload = JSON.stringify(item);
    if (dedupeKey === undefined) {
      await redis.xAdd(stream, "*", { d: payload });
      return true;
    }
    return (await redis.eval(ENQUEUE_ONCE, { keys: [keys.seen(dedupeKey), stream], arguments: [String(opts.dedupeTtlS), payload] })) === 1;
  }

  async function enqueueOutbound(job: OutboundJob): Promise<void> {
    await redis.xAdd(keys.outboxStream(partitionOf(`${job.from}|${job.to}`)), "*", { d: JSON.stringify(job) });
  }

  async function work<T>(stream: string, handler: (item: T, meta: DeliveryMeta) => Promise<void>): Promise<void> {
    const reader = redis.duplicate();
    reader.on("error", (err: Error) => log.warn({ err: err.message, stream }, "redis reader error"));
    readers.push(reader);
    await reader.connect();
    await ensureGroup(stream);
    // Start with our own pending entries (left by a crash of this consumer), then new ones.
    let cursor = "0";
    while (running) {
      let entries: { id: string; message: Record<string, string> }[];
      try {
        const res = await reader.xReadGroup(GROUP, opts.consumerName, { key: stream, id: cursor }, { COUNT: 32, ...(cursor === ">" ? { BLOCK: blockMs } : {}) });
        entries = (res as { messages: { id: string; message: Record<string, string> }[] }[] | null)?.[0]?.messages ?? [];
      } catch (err) {
        if (!running) return;
        log.warn({ err: (err as Error).message, stream }, "stream read failed; retrying");
        await delay(1000);
        continue;
      }
      if (cursor === "0" && entries.length === 0) {
        cursor = ">";
        continue;
      }
      for (const entry of entries) {
        if (!running) return;
        // Entries read from our own pending list were interrupted by a crash or a stop: not a first try.
        await handleEntry(stream, entry, handler, cursor === "0" ? 2 : 1);
      }
    }
  }

  async function handleEntry<T>(stream: string, entry: { id: string; message: Record<string, string> }, handler: (item: T, meta: DeliveryMeta) => Promise<void>, firstAttempt: number): Promise<void> {
    let failures = 0;
    let attempt = firstAttempt;
    let wait = retry.min;
    for (;;) {
      let item: T;
      try {
        item = JSON.parse(entry.message.d ?? "") as T;
      } catch {
        await deadLetter(stream, entry, "unreadable entry");
        return;
      }
      try {
        await handler(item, { attempt });
        await redis.multi().xAck(stream, GROUP, entry.id).xDel(stream, entry.id).exec();
        return;
      } catch (err) {
        if (!running) return; // stays pending; picked up again on the next start
        if (!(err instanceof RetryLater)) {
          failures++;
          log.error({ err, stream, entry: entry.id }, "pipeline handler failed");
          if (failures >= maxFailures) {
            await deadLetter(stream, entry, (err as Error).message);
            return;
          }
        }
        await delay(wait);
        wait = Math.min(retry.max, wait * 2);
        attempt++;
      }
    }
  }

  async function deadLetter(stream: string, entry: { id: string; message: Record<string, string> }, reason: string): Promise<void> {
    await redis
      .multi()
      .xAdd(keys.deadLetters, "*", { stream, entry: entry.id, reason, d: entry.message.d ?? "" }, { TRIM: { strategy: "MAXLEN", strategyModifier: "~", threshold: DEAD_LETTER_MAX } })
      .xAck(stream, GROUP, entry.id)
      .xDel(stream, entry.id)
      .exec();
    log.error({ stream, entry: entry.id, reason }, "dead-lettered");
  }

  /** Waits, but returns at once when the pipeline stops. */
  function delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      stopping.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    });
  }

  return {
    enqueueToXmpp,
    enqueueOutbound,
    consume(handlers) {
      running = true;
      stopping = new AbortController();
      for (let p = 0; p < opts.partitions; p++) {
        loops.push(work(keys.toXmppStream(p), handlers.toXmpp).catch((err) => log.error({ err }, "to-xmpp loop died")));
        loops.push(work(keys.outboxStream(p), handlers.outbound).catch((err) => log.error({ err }, "outbox loop died")));
      }
    },
    async stop() {
      running = false;
      stopping.abort();
      for (const r of readers) r.destroy();
      await Promise.allSettled(loops);
      readers.length = 0;
      loops.length = 0;
    },
    async depth() {
      let toXmpp = 0;
      let outbox = 0;
      for (let p = 0; p < opts.partitions; p++) {
        toXmpp += await redis.xLen(keys.toXmppStream(p));
        outbox += await redis.xLen(keys.outboxStream(p));
      }
      return { toXmpp, outbox };
    },
  };
}
