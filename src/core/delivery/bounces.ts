// Bounces toward XMPP: which write of a delivery the server bounced, and what happens next.
//
// XEP-0114 acknowledges nothing, so a delivery is proven by a barrier (a round trip through the server
// after it) and refused by a bounce (`<message type='error'>` with the same stanza id). Two rules keep
// the count honest:
// - a bounce belongs to the write it answered: a later write of the same delivery starts clean, and a
//   bounce for a stanza that is no longer awaited (its barrier came back long ago) counts for nothing;
// - a bounced delivery waits a real backoff (its conversation with it, so order holds) before it is
//   written again, and becomes a dead letter only after `maxBounces` bounces.
// Pure bookkeeping, no I/O: the component and the engine call it (xmpp/component.ts,
// core/delivery/to-xmpp.ts).

/** The writes the XMPP server has not yet proven, and the bounces that answered them. */
export interface BounceLedger {
  /** A stanza was written for delivery `key`; returns its write number. An earlier write's bounce is forgotten. */
  written(stanzaId: string, key: string): number;
  /**
   * The server bounced `stanzaId`: recorded against that stanza's latest unproven write. False (nothing
   * recorded) when no write of it is awaited: a late bounce does not count against a later write.
   */
  bounced(stanzaId: string, reason: string, now?: number): boolean;
  /** The number of the last write: a barrier sent now covers every write up to it. */
  mark(): number;
  /**
   * A barrier covering every write up to `mark` came back: those writes are proven (or bounced). Returns
   * the bounces of covered writes by delivery key; a key written again since is not in it.
   */
  covered(mark: number, now?: number): Map<string, string>;
}

/** How long an unclaimed bounce is kept: long after any barrier that could still ask for it. */
const KEEP_BOUNCES_MS = 5 * 60_000;

export function createBounceLedger(): BounceLedger {
  // Stanza id → the latest write of it not yet covered by a barrier. Insertion order is write order
  // (a rewrite moves to the end), so covered writes are dropped from the front.
  const awaited = new Map<string, { key: string; seq: number }>();
  // Delivery key → the bounce of one write of it. Kept in arrival order (pruned from the front by age).
  const bounces = new Map<string, { reason: string; seq: number; at: number }>();
  let seq = 0;

  return {
    written(stanzaId, key) {
      seq++;
      awaited.delete(stanzaId);
      awaited.set(stanzaId, { key, seq });
      bounces.delete(key);
      return seq;
    },
    bounced(stanzaId, reason, now = Date.now()) {
      const write = awaited.get(stanzaId);
      if (!write) return false;
      bounces.delete(write.key);
      bounces.set(write.key, { reason, seq: write.seq, at: now });
      return true;
    },
    mark: () => seq,
    covered(mark, now = Date.now()) {
      for (const [id, w] of awaited) {
        if (w.seq > mark) break;
        awaited.delete(id);
      }
      // Several barriers may cover the same write (one per partition in flight): each reports it, and
      // only the batch that holds the delivery reads it. A rewrite or age removes it.
      const result = new Map<string, string>();
      for (const [key, b] of bounces) {
        if (now - b.at > KEEP_BOUNCES_MS) bounces.delete(key);
        else if (b.seq <= mark) result.set(key, b.reason);
      }
      return result;
    },
  };
}

export interface BounceRetryOptions {
  /** The bounce that makes a delivery a dead letter (XMPP_MAX_BOUNCES). */
  maxBounces: number;
  /** Wait after the first bounce (XMPP_BOUNCE_RETRY_MS); each further bounce waits three times longer. */
  baseMs: number;
  /** Cap of one wait (XMPP_BOUNCE_RETRY_MAX_MS). */
  maxMs: number;
}

/** Wait before writing a delivery again after its `bounces`-th bounce: base·3^(n-1), capped. */
export function bounceBackoff(bounces: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 3 ** Math.max(0, Math.min(bounces - 1, 30)));
}

export type BounceVerdict = { deadLetter: true; bounces: number } | { deadLetter: false; bounces: number; retryAt: number };

/**
 * Per consumer: how often each queued delivery was bounced, and which conversations wait before their
 * next write. A conversation waits as a whole, so what was accepted after a bounced message is not
 * delivered before it.
 */
export function createBounceRetries(opts: BounceRetryOptions) {
  const counts = new Map<string, number>();
  const holds = new Map<string, number>();

  return {
    /** Bounces counted so far for the queued entry `entryId`. */
    count: (entryId: string): number => counts.get(entryId) ?? 0,

    /** One bounce of `entryId` (in `conversation`), counted once: dead-letter it, or hold its conversation. */
    bounced(entryId: string, conversation: string, now = Date.now()): BounceVerdict {
      const n = (counts.get(entryId) ?? 0) + 1;
      if (n >= opts.maxBounces) {
        counts.delete(entryId);
        return { deadLetter: true, bounces: n };
      }
      counts.set(entryId, n);
      const retryAt = now + bounceBackoff(n, opts.baseMs, opts.maxMs);
      holds.set(conversation, Math.max(holds.get(conversation) ?? 0, retryAt));
      return { deadLetter: false, bounces: n, retryAt };
    },

    /** The entry left the queue (delivered, dead-lettered): its count is forgotten. */
    forget(entryId: string): void {
      counts.delete(entryId);
    },

    /** True while `conversation` waits after a bounce; an expired hold is dropped. */
    isHeld(conversation: string, now = Date.now()): boolean {
      const until = holds.get(conversation);
      if (until === undefined) return false;
      if (until > now) return true;
      holds.delete(conversation);
      return false;
    },

    /**
     * Ends the holds that are over; true when one ended (the held entries are then read again, in order).
     * Called by the consumer before each read.
     */
    releaseDue(now = Date.now()): boolean {
      let released = false;
      for (const [conversation, until] of holds) {
        if (until > now) continue;
        holds.delete(conversation);
        released = true;
      }
      return released;
    },

    /** When the earliest hold ends, or undefined when none is held (a blocking read waits no longer). */
    nextRelease(): number | undefined {
      let next: number | undefined;
      for (const until of holds.values()) if (next === undefined || until < next) next = until;
      return next;
    },
  };
}

export type BounceRetries = ReturnType<typeof createBounceRetries>;
