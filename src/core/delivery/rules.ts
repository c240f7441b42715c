// The delivery engine's rules that are not about bounces (bounces.ts): how often a handler may fail
// before its item is given up, when a delivery toward XMPP is too late, how long a partition waits after
// a failed batch. Pure, so each rule is tested without a store or a clock.
import type { XmppDelivery } from "../model/message.js";

export interface DeliveryRules {
  /** Tries of a handler that fails with something other than RetryLater before the item is a dead letter. */
  maxFailures: number;
  /** Toward XMPP, a chat still undelivered this long after it was accepted is a dead letter. */
  toXmppDeadlineMs: number;
  /** The wait of a partition after a failed batch: from `min`, doubling up to `max`; back to `min` after a good one. */
  retryDelayMs: { min: number; max: number };
}

export const DEFAULT_RULES: DeliveryRules = {
  maxFailures: 5,
  toXmppDeadlineMs: 3 * 86_400_000,
  retryDelayMs: { min: 250, max: 15_000 },
};

/** Failures of the entries in hand (counted per consumer, forgotten when an entry leaves the queue). */
export function createFailureCount(maxFailures: number) {
  const counts = new Map<string, number>();
  return {
    count: (entryId: string): number => counts.get(entryId) ?? 0,
    /** One more failure of `entryId`: true when it was the last allowed (the caller dead-letters it). */
    failed(entryId: string): boolean {
      const n = (counts.get(entryId) ?? 0) + 1;
      if (n >= maxFailures) {
        counts.delete(entryId);
        return true;
      }
      counts.set(entryId, n);
      return false;
    },
    forget(entryId: string): void {
      counts.delete(entryId);
    },
  };
}

export type FailureCount = ReturnType<typeof createFailureCount>;

/** Why a delivery toward XMPP is given up as too late, or undefined while it may still go. */
export function pastDeadline(item: XmppDelivery, now: number, deadlineMs: number): string | undefined {
  if (item.kind !== "chat" || now - item.acceptedAt <= deadlineMs) return undefined;
  return `not delivered to XMPP within ${Math.round(deadlineMs / 60_000)} minutes`;
}

/** The attempt number a handler is told: 1 on the first try, more after failures, bounces or a restart. */
export function attemptNumber(firstTry: boolean, failures: number, bounces = 0): number {
  return (firstTry ? 1 : 2) + failures + bounces;
}

/** The partition's next wait after a failed batch (doubling, capped). */
export function nextRetryDelay(current: number, rules: Pick<DeliveryRules, "retryDelayMs">): number {
  return Math.min(rules.retryDelayMs.max, current * 2);
}

/** The conversation a delivery toward XMPP belongs to: its order is kept, and it waits as a whole after a bounce. */
export function conversationToXmpp(item: XmppDelivery): string {
  return `${item.to.split("/")[0]}|${item.from}`;
}

/** The conversation of an outbound job: the sender and the destination. */
export function conversationOutbound(job: { from: string; to: string }): string {
  return `${job.from}|${job.to}`;
}
