// The delivery queues (core/delivery/queues.ts) on Redis streams: one stream per queue and partition,
// one consumer group, and the scripts that make each step atomic. Only storage here; every decision is
// the engine's (core/delivery/engine.ts).
import type { AddOnce, DeadLetterRow, DeliveryQueues, QueueEntry, QueueName, QueueReader } from "../../core/delivery/queues.js";
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
// already dead-lettered) is never dead-lettered as well.
// KEYS: stream, dead letters. ARGV: group, entry id, stream name, queue, reason, at, payload, cap.
// 1 = moved, 0 = no longer in the stream.
const MOVE_TO_DEAD = `
if redis.call('XDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', 'stream', ARGV[3], 'queue', ARGV[4], 'reason', ARGV[5], 'at', ARGV[6], 'd', ARGV[7])
return 1
`;

function streamOf(queue: QueueName, partition: number): string {
  return queue === "to-xmpp" ? keys.toXmppStream(partition) : keys.outboxStream(partition);
}

type StreamRow = { id: string; message: Record<string, string> };

function entryOf(row: { id: string; message: unknown }): QueueEntry {
  return { id: row.id, data: (row.message as Record<string, string>).d ?? "" };
}

function deadLetterRowOf(row: StreamRow): DeadLetterRow {
  const m = row.message;
  return { id: row.id, queue: m.queue === "outbound" ? "outbound" : "to-xmpp", reason: m.reason ?? "", at: Number(m.at ?? 0), data: m.d ?? "" };
}

export function createRedisQueues(redis: Redis): DeliveryQueues {
  const ensured = new Set<string>();

  async function ensureGroup(client: Redis, stream: string): Promise<void> {
    if (ensured.has(stream)) return;
    try {
      await client.xGroupCreate(stream, GROUP, "0", { MKSTREAM: true });
    } catch (err) {
      if (!String((err as Error).message).includes("BUSYGROUP")) throw err;
    }
    ensured.add(stream);
  }

  return {
    async add(queue, partition, data, once?: AddOnce) {
      const stream = streamOf(queue, partition);
      if (!once) {
        await redis.xAdd(stream, "*", { d: data });
        return true;
      }
      const marker = keys.seen(once.key);
      const res = await runScript(redis, ENQUEUE_ONCE, {
        keys: [marker, stream, once.legacy === undefined ? marker : keys.seen(once.legacy)],
        arguments: [String(once.ttlS), data, once.itemId, once.ownIdsOnly ? "1" : "0"],
      });
      return res === 1;
    },
    async addJob(partition, data, messageId, once) {
      const record = keys.message(messageId);
      const res = await runScript(redis, ENQUEUE_OUTBOUND, {
        keys: [record, once ? keys.seen(once.key) : record, streamOf("outbound", partition)],
        arguments: [String(once?.ttlS ?? 0), data, once?.itemId ?? messageId, once ? "1" : "0"],
      });
      return res === -1 ? "no-record" : res === 1 ? "stored" : "seen";
    },
    async marker(key) {
      const v = await redis.get(keys.seen(key));
      // "1": the marker before it held the item's id
      return v && v !== "1" ? v : undefined;
    },
    length: (queue, partition) => redis.xLen(streamOf(queue, partition)),
    reader(queue, partition, consumer, blockMs): QueueReader {
      const stream = streamOf(queue, partition);
      const client = duplicateForBlocking(redis, blockMs);
      client.on("error", () => undefined); // a failed read reports it; the client reconnects by itself
      let closed = false;
      return {
        async read(cursor, count, block) {
          if (!client.isOpen) {
            await client.connect();
            // Closed while connecting: node-redis would keep a client destroyed mid-connect reconnecting.
            if (closed) {
              client.destroy();
              return [];
            }
          }
          await ensureGroup(client, stream);
          const res = await client.xReadGroup(GROUP, consumer, { key: stream, id: cursor }, { COUNT: count, ...(cursor === ">" ? { BLOCK: block } : {}) });
          const rows = ((res as { messages: (StreamRow | null)[] }[] | null)?.[0]?.messages ?? []).filter((e): e is StreamRow => e !== null);
          return rows.map(entryOf);
        },
        close() {
          closed = true;
          client.destroy();
        },
      };
    },
    async ack(queue, partition, ids) {
      if (ids.length === 0) return;
      const stream = streamOf(queue, partition);
      await redis.multi().xAck(stream, GROUP, ids).xDel(stream, ids).exec();
    },
    async stillPending(queue, partition, consumer, ids) {
      if (ids.length === 0) return new Set();
      return new Set(await redis.xClaimJustId(streamOf(queue, partition), GROUP, consumer, 0, ids));
    },
    async takeOver(queue, partition, consumer) {
      const stream = streamOf(queue, partition);
      await ensureGroup(redis, stream);
      // Counted from the pending list first: XAUTOCLAIM does not say whose each entry was.
      const summary = (await redis.xPending(stream, GROUP)) as { consumers: { name: string; deliveriesCounter: number }[] | null } | null;
      const others = (summary?.consumers ?? []).filter((c) => c.name !== consumer).reduce((n, c) => n + Number(c.deliveriesCounter), 0);
      if (others === 0) return 0;
      let cursor = "0-0";
      do {
        const res = (await redis.xAutoClaimJustId(stream, GROUP, consumer, 0, cursor, { COUNT: 500 })) as { nextId: string };
        cursor = res.nextId;
      } while (cursor !== "0-0");
      return others;
    },
    async claimIdle(queue, partition, consumer, minIdleMs, count) {
      const res = await redis.xAutoClaimJustId(streamOf(queue, partition), GROUP, consumer, minIdleMs, "0-0", { COUNT: count });
      return (res as { messages: unknown[] }).messages.length;
    },
    async moveToDead(queue, partition, entry, reason, at) {
      const stream = streamOf(queue, partition);
      const moved = await runScript(redis, MOVE_TO_DEAD, {
        keys: [stream, keys.deadLetters],
        arguments: [GROUP, entry.id, stream, queue, reason, String(at), entry.data, String(DEAD_LETTER_MAX)],
      });
      return moved === 1;
    },
    async scan(queue, partition, after, count) {
      const rows = (await redis.xRange(streamOf(queue, partition), after === undefined ? "-" : `(${after}`, "+", { COUNT: count })) ?? [];
      return rows.map(entryOf);
    },
    async deadLetters(limit) {
      const rows = (await redis.xRevRange(keys.deadLetters, "+", "-", { COUNT: limit })) ?? [];
      return rows.map((row) => deadLetterRowOf(row as StreamRow));
    },
    async deadLetter(id) {
      const row = (await redis.xRange(keys.deadLetters, id, id))?.[0];
      return row ? deadLetterRowOf(row as StreamRow) : undefined;
    },
    async requeue(id) {
      const row = (await redis.xRange(keys.deadLetters, id, id))?.[0] as StreamRow | undefined;
      // `stream`: the stream it left (a dead letter keeps its partition, whatever PIPELINE_PARTITIONS says now)
      if (!row?.message.stream || !row.message.d) return false;
      await redis.multi().xAdd(row.message.stream, "*", { d: row.message.d }).xDel(keys.deadLetters, id).exec();
      return true;
    },
    // Stream ids start with the time they were added (ms): MINID drops every entry older than that.
    trimDeadLetters: (before) => redis.xTrim(keys.deadLetters, "MINID", String(before)),
    async depth(queue, partitions) {
      // Entries leave their stream when acknowledged, so length = waiting + in hand, and the first
      // entry's id (its arrival time in ms) dates the oldest.
      const m = redis.multi();
      for (let p = 0; p < partitions; p++) m.xLen(streamOf(queue, p)).xRange(streamOf(queue, p), "-", "+", { COUNT: 1 });
      const replies = (await m.exec()) as unknown[];
      let depth = 0;
      let oldestAt: number | undefined;
      for (let i = 0; i < replies.length; i += 2) {
        depth += Number(replies[i]);
        const first = (replies[i + 1] as { id: string }[] | null)?.[0];
        if (first) oldestAt = Math.min(oldestAt ?? Infinity, Number(first.id.split("-")[0]));
      }
      return { depth, ...(oldestAt !== undefined ? { oldestAt } : {}) };
    },
    deadLetterCount: () => redis.xLen(keys.deadLetters),
    isUnavailable: isRedisUnavailable,
  };
}
