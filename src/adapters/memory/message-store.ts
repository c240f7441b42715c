// MessageStore (core/ports.ts) in memory, with the rules of adapters/redis/message-store.ts's scripts:
// statuses move forward only and a final one never changes; the first provider id recorded is the
// message's; a status callback counts only from the account that sent the message and for its provider
// id, and one that comes before the create's answer is held until `advance` records the same id;
// starting a request is a compare-and-set on the attempt count; one-time marks; lifetimes (a record
// lives RECORD_MAX_AGE_S, then `retentionS` once final); the index of messages awaiting a final status. For unit tests of the flows;
// test/support/contracts/message-store.ts runs the same cases on both.
import { isFinal, statusRank, type MessageRecord, type MessageStatus } from "../../core/model/message.js";
import type { AttemptState, MessageStore } from "../../core/ports.js";
import { RECORD_MAX_AGE_S } from "../redis/keys.js";

/** A callback held before the create's answer (Redis: the `early:<sid>` field). */
interface Held {
  rank: number;
  status: MessageStatus;
  errorCode?: number;
}

interface Entry {
  record: MessageRecord;
  attempt?: "inflight" | "clear";
  attempts: number;
  firstAttemptAt?: number;
  once: Set<string>;
  early: Map<string, Held>;
  expiresAt: number;
}

/** Fields a record may reach with held callbacks (as the Redis hash counts them); more are not held. */
const MAX_RECORD_FIELDS = 40;
/** The fields every stored record has (id, direction, channel, jid, contactJid, receiptRequested, status, rank, final, createdAt, updatedAt). */
const BASE_FIELDS = 11;

export interface MemoryMessageStoreOptions {
  /** MESSAGE_RETENTION: how long a record lives once final, and a provider id's map entry. */
  retentionS?: number;
  now?: () => number;
}

export type MemoryMessageStore = MessageStore & {
  /** True while a record exists (the memory queues' `hasRecord`: a job needs its record). */
  has(id: string): boolean;
  /** The attempt state as startSending would report it (for assertions); undefined without a record. */
  attemptOf(id: string): AttemptState | undefined;
};

/** A copy without keys whose value is undefined: what a stored record reads back as. */
function clean(r: MessageRecord): MessageRecord {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as MessageRecord;
}

export function createMemoryMessageStore(opts: MemoryMessageStoreOptions = {}): MemoryMessageStore {
  const now = opts.now ?? Date.now;
  const retentionS = opts.retentionS ?? 7 * 86_400;
  const entries = new Map<string, Entry>();
  const sids = new Map<string, { id: string; expiresAt: number }>();
  /** The awaiting-status index (Redis: a sorted set): id → when its status check is due. */
  const awaiting = new Map<string, number>();

  function live(id: string): Entry | undefined {
    const e = entries.get(id);
    if (e && e.expiresAt <= now()) {
      entries.delete(id);
      return undefined;
    }
    return e;
  }

  function fieldCount(e: Entry): number {
    const r = e.record;
    const optional = [r.stanzaId, r.providerId, r.account, r.errorCode].filter((v) => v !== undefined).length;
    const attempt = [e.attempt, e.attempts > 0 ? e.attempts : undefined, e.firstAttemptAt].filter((v) => v !== undefined).length;
    return BASE_FIELDS + optional + attempt + e.once.size + e.early.size;
  }

  function attemptOf(e: Entry): AttemptState {
    return { state: e.attempt ?? "none", count: e.attempts, ...(e.firstAttemptAt !== undefined ? { firstAt: e.firstAttemptAt } : {}) };
  }

  /** The forward-only move (Redis: MOVE_FORWARD). */
  function moveForward(e: Entry, status: MessageStatus, errorCode: number | undefined): { record: MessageRecord; changed: boolean } {
    let changed = false;
    if (!isFinal(e.record.status) && statusRank(status) > statusRank(e.record.status)) {
      e.record = { ...e.record, status, updatedAt: now(), ...(errorCode !== undefined ? { errorCode } : {}) };
      if (isFinal(status)) {
        e.expiresAt = now() + retentionS * 1000;
        awaiting.delete(e.record.id);
      }
      changed = true;
    }
    return { record: { ...e.record }, changed };
  }

  function begin(e: Entry, count: number): AttemptState {
    e.firstAttemptAt ??= now();
    e.attempt = "inflight";
    e.attempts = count;
    return { state: "inflight", count, firstAt: e.firstAttemptAt };
  }

  return {
    has: (id) => live(id) !== undefined,
    attemptOf: (id) => {
      const e = live(id);
      return e && attemptOf(e);
    },

    async create(r) {
      const ttlS = isFinal(r.status) ? retentionS : RECORD_MAX_AGE_S;
      entries.set(r.id, { record: clean(r), attempts: 0, once: new Set(), early: new Map(), expiresAt: now() + ttlS * 1000 });
    },

    async get(id) {
      const e = live(id);
      return e && { ...e.record };
    },

    async advance(id, status, patch) {
      const e = live(id);
      if (!e) return undefined;
      let next = status;
      let errorCode = patch?.errorCode;
      const sid = patch?.providerId;
      if (sid && e.record.providerId === undefined) {
        e.record = { ...e.record, providerId: sid };
        sids.set(sid, { id, expiresAt: now() + retentionS * 1000 });
        if (!isFinal(e.record.status)) {
          for (const [other, at] of awaiting) if (at < now() - RECORD_MAX_AGE_S * 1000) awaiting.delete(other);
          if (!awaiting.has(id)) awaiting.set(id, now());
        }
        const held = e.early.get(sid);
        if (held && held.rank > statusRank(next)) {
          next = held.status;
          errorCode = held.errorCode;
        }
        e.early.clear();
      }
      return moveForward(e, next, errorCode);
    },

    async callback(id, cb) {
      const e = live(id);
      if (!e) return { outcome: "unknown" };
      if (e.record.account !== undefined && e.record.account !== (cb.account ?? "")) return { outcome: "refused", why: "account" };
      if (e.record.providerId !== undefined && e.record.providerId !== cb.providerId) return { outcome: "refused", why: "provider-id" };
      if (e.record.providerId === undefined) {
        const prev = e.early.get(cb.providerId);
        if (!prev && fieldCount(e) >= MAX_RECORD_FIELDS) return { outcome: "held" };
        const rank = statusRank(cb.status);
        if (!prev || prev.rank < rank) e.early.set(cb.providerId, { rank, status: cb.status, ...(cb.errorCode !== undefined ? { errorCode: cb.errorCode } : {}) });
        return { outcome: "held" };
      }
      return { outcome: "applied", ...moveForward(e, cb.status, cb.errorCode) };
    },

    async markOnce(id, what) {
      const e = live(id);
      if (!e || e.once.has(what)) return false;
      e.once.add(what);
      return true;
    },

    async idForProviderId(sid) {
      const m = sids.get(sid);
      if (!m) return undefined;
      if (m.expiresAt <= now()) {
        sids.delete(sid);
        return undefined;
      }
      return m.id;
    },

    async startSending(id) {
      const e = live(id);
      if (!e) return undefined;
      if (e.record.status === "pending" && e.record.providerId === undefined && e.attempt !== "inflight") return { begun: begin(e, e.attempts + 1) };
      return { record: { ...e.record }, attempt: attemptOf(e) };
    },

    async beginAttempt(id, expectedCount) {
      const e = live(id);
      if (!e || e.attempts !== expectedCount) return undefined;
      return begin(e, expectedCount + 1);
    },

    async clearAttempt(id) {
      const e = live(id);
      if (e) e.attempt = "clear";
    },

    async dueStatusChecks(upTo, limit) {
      return [...awaiting]
        .filter(([, at]) => at <= upTo)
        .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, limit)
        .map(([id]) => id);
    },

    async scheduleStatusCheck(id, at) {
      if (at === undefined) awaiting.delete(id);
      else if (awaiting.has(id)) awaiting.set(id, at);
    },
  };
}
