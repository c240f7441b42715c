// The delivery queues (core/delivery/queues.ts) in memory, with the consumer-group semantics of the
// Redis adapter: an entry read is pending for its reader until acknowledged, a reader's own pending
// entries can be read again from "0", idle ones can be claimed, and an entry leaves only when
// acknowledged or dead-lettered. For unit tests of the engine: no persistence, one process.
import type { AddOnce, DeadLetterRow, DeliveryQueues, QueueEntry, QueueName, QueueReader } from "../../core/delivery/queues.js";

/** Thrown while the store is "down" (MemoryQueues.down): what the engine must treat as "try again later". */
export class MemoryStoreDown extends Error {
  override name = "MemoryStoreDown";
}

interface Partition {
  entries: Map<string, string>;
  /** id → who holds it and since when */
  pending: Map<string, { consumer: string; since: number }>;
  /** the group's last delivered id (what ">" reads after) */
  lastDelivered: string;
}

interface Stored extends DeadLetterRow {
  partition: number;
}

export type MemoryQueues = DeliveryQueues & {
  /** While true, every call fails with MemoryStoreDown. */
  down: boolean;
  /** Every entry of a partition, oldest first (for assertions). */
  entries(queue: QueueName, partition: number): QueueEntry[];
  /** Pending entries of a partition and who holds them. */
  pending(queue: QueueName, partition: number): Map<string, string>;
};

/** Compares stream ids "ms-seq". */
function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am - bm || as - bs;
}

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export function createMemoryQueues(opts: { now?: () => number; hasRecord?: (messageId: string) => boolean } = {}): MemoryQueues {
  const now = opts.now ?? Date.now;
  const partitions = new Map<string, Partition>();
  const markers = new Map<string, { value: string; expiresAt: number }>();
  const dead = new Map<string, Stored>();
  const waiters = new Set<() => void>();
  let lastMs = 0;
  let seq = 0;

  function nextId(): string {
    const ms = Math.max(now(), lastMs);
    seq = ms === lastMs ? seq + 1 : 0;
    lastMs = ms;
    return `${ms}-${seq}`;
  }

  function part(queue: QueueName, partition: number): Partition {
    const key = `${queue}:${partition}`;
    let p = partitions.get(key);
    if (!p) {
      p = { entries: new Map(), pending: new Map(), lastDelivered: "0-0" };
      partitions.set(key, p);
    }
    return p;
  }

  function check(): void {
    if (self.down) throw new MemoryStoreDown("the store is down");
  }

  function append(queue: QueueName, partition: number, data: string): void {
    part(queue, partition).entries.set(nextId(), data);
    for (const w of [...waiters]) w();
  }

  function liveMarker(key: string): string | undefined {
    const m = markers.get(key);
    if (!m) return undefined;
    if (m.expiresAt <= now()) {
      markers.delete(key);
      return undefined;
    }
    return m.value;
  }

  function takeNew(p: Partition, consumer: string, count: number): QueueEntry[] {
    const out: QueueEntry[] = [];
    for (const [id, data] of p.entries) {
      if (out.length >= count) break;
      if (compareIds(id, p.lastDelivered) <= 0) continue;
      p.pending.set(id, { consumer, since: now() });
      p.lastDelivered = id;
      out.push({ id, data });
    }
    return out;
  }

  const self: MemoryQueues = {
    down: false,
    async add(queue, partition, data, once?: AddOnce) {
      check();
      if (once) {
        const seen = liveMarker(once.key);
        if (seen !== undefined && (!once.ownIdsOnly || ULID.test(seen))) return false;
        if (once.legacy !== undefined && liveMarker(once.legacy) !== undefined) return false;
        markers.set(once.key, { value: once.itemId, expiresAt: now() + once.ttlS * 1000 });
      }
      append(queue, partition, data);
      return true;
    },
    async addJob(partition, data, messageId, once) {
      check();
      if (opts.hasRecord && !opts.hasRecord(messageId)) return "no-record";
      if (once) {
        if (liveMarker(once.key) !== undefined) return "seen";
        markers.set(once.key, { value: once.itemId, expiresAt: now() + once.ttlS * 1000 });
      }
      append("outbound", partition, data);
      return "stored";
    },
    async marker(key) {
      check();
      return liveMarker(key);
    },
    async length(queue, partition) {
      check();
      return part(queue, partition).entries.size;
    },
    reader(queue, partition, consumer): QueueReader {
      let closed = false;
      let wakeReader: (() => void) | undefined;
      return {
        async read(cursor, count, blockMs) {
          check();
          const p = part(queue, partition);
          if (cursor !== ">") {
            const out: QueueEntry[] = [];
            const ids = [...p.pending]
              .filter(([id, h]) => h.consumer === consumer && compareIds(id, cursor) > 0)
              .map(([id]) => id)
              .sort(compareIds);
            for (const id of ids) {
              if (out.length >= count) break;
              const data = p.entries.get(id);
              if (data !== undefined) out.push({ id, data });
            }
            return out;
          }
          const ready = takeNew(p, consumer, count);
          if (ready.length > 0 || closed) return ready;
          await new Promise<void>((resolve) => {
            const t = setTimeout(done, blockMs);
            function done(): void {
              clearTimeout(t);
              waiters.delete(done);
              wakeReader = undefined;
              resolve();
            }
            wakeReader = done;
            waiters.add(done);
          });
          check();
          return closed ? [] : takeNew(p, consumer, count);
        },
        close() {
          closed = true;
          wakeReader?.();
        },
      };
    },
    async ack(queue, partition, ids) {
      check();
      const p = part(queue, partition);
      for (const id of ids) {
        p.pending.delete(id);
        p.entries.delete(id);
      }
    },
    async stillPending(queue, partition, consumer, ids) {
      check();
      const p = part(queue, partition);
      const out = new Set<string>();
      for (const id of ids) {
        if (!p.pending.has(id) || !p.entries.has(id)) continue;
        p.pending.set(id, { consumer, since: now() });
        out.add(id);
      }
      return out;
    },
    async takeOver(queue, partition, consumer) {
      check();
      let others = 0;
      for (const [id, h] of part(queue, partition).pending) {
        if (h.consumer !== consumer) others++;
        part(queue, partition).pending.set(id, { consumer, since: now() });
      }
      return others;
    },
    async claimIdle(queue, partition, consumer, minIdleMs, count) {
      check();
      const p = part(queue, partition);
      let claimed = 0;
      for (const [id, h] of p.pending) {
        if (claimed >= count) break;
        if (now() - h.since < minIdleMs) continue;
        p.pending.set(id, { consumer, since: now() });
        claimed++;
      }
      return claimed;
    },
    async moveToDead(queue, partition, entry, reason, at) {
      check();
      const p = part(queue, partition);
      if (!p.entries.delete(entry.id)) return false;
      p.pending.delete(entry.id);
      const id = nextId();
      dead.set(id, { id, queue, partition, reason, at, data: entry.data });
      return true;
    },
    async scan(queue, partition, after, count) {
      check();
      const out: QueueEntry[] = [];
      for (const [id, data] of part(queue, partition).entries) {
        if (out.length >= count) break;
        if (after === undefined || compareIds(id, after) > 0) out.push({ id, data });
      }
      return out;
    },
    async deadLetters(limit) {
      check();
      return [...dead.values()]
        .reverse()
        .slice(0, limit)
        .map(({ partition: _p, ...row }) => row);
    },
    async deadLetter(id) {
      check();
      const row = dead.get(id);
      if (!row) return undefined;
      const { partition: _p, ...rest } = row;
      return rest;
    },
    async requeue(id) {
      check();
      const row = dead.get(id);
      if (!row) return false;
      dead.delete(id);
      append(row.queue, row.partition, row.data);
      return true;
    },
    async trimDeadLetters(before) {
      check();
      let n = 0;
      for (const id of [...dead.keys()]) {
        if (Number(id.split("-")[0]) < before) {
          dead.delete(id);
          n++;
        }
      }
      return n;
    },
    async depth(queue, count) {
      check();
      let depth = 0;
      let oldestAt: number | undefined;
      for (let p = 0; p < count; p++) {
        const first = part(queue, p).entries.keys().next();
        depth += part(queue, p).entries.size;
        if (!first.done) oldestAt = Math.min(oldestAt ?? Infinity, Number(first.value.split("-")[0]));
      }
      return { depth, ...(oldestAt !== undefined ? { oldestAt } : {}) };
    },
    async deadLetterCount() {
      check();
      return dead.size;
    },
    isUnavailable: (err) => err instanceof MemoryStoreDown,
    entries: (queue, partition) => [...part(queue, partition).entries].map(([id, data]) => ({ id, data })),
    pending: (queue, partition) => new Map([...part(queue, partition).pending].map(([id, h]) => [id, h.consumer])),
  };
  return self;
}
