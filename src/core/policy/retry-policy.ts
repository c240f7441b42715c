// How long to wait before trying the provider again. Pure, so the policy can be tested without clocks.
import type { ProviderFailure } from "../ports.js";

/**
 * Upper bound of one backoff wait. Short enough that a provider that recovers is noticed well within
 * the outbound deadline, long enough that a struggling one is not hammered.
 */
export const MAX_BACKOFF_MS = 60_000;

/** A Retry-After longer than this is not believed: the deadline decides instead. */
export const RETRY_AFTER_CAP_MS = 5 * 60_000;

/** Exponential backoff with jitter in the upper half: base·2^(n-1) · [0.5, 1), capped. */
export function backoff(baseMs: number, attempt: number, capMs = MAX_BACKOFF_MS, random: () => number = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** (attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/**
 * Wait after the `attempt`-th request failed in a way that is safe to retry. The provider's
 * Retry-After is a minimum (capped); a little jitter on top keeps senders that were told the same
 * thing from coming back in the same instant, and our own backoff still grows under it.
 */
export function retryDelay(failure: ProviderFailure, attempt: number, baseMs: number, random: () => number = Math.random): number {
  const own = backoff(baseMs, attempt, MAX_BACKOFF_MS, random);
  if (failure.retryAfterMs === undefined) return own;
  const asked = Math.min(RETRY_AFTER_CAP_MS, Math.max(0, failure.retryAfterMs));
  return Math.max(own, Math.round(asked + random() * Math.min(1000, asked * 0.2)));
}
