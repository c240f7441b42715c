// UsageCounter (core/policy/limits.ts) in memory, counting like adapters/redis/usage-counter.ts (rate-limiter-
// flexible's Redis limiter): a key's fixed window starts with the first amount counted under it and
// lasts `windowS`; a take that would pass the limit is refused with the time left in the window, and
// given back unless the counter `staysTripped` (a breaker). The clock is injectable, so a test can end
// a window without waiting for it.
import type { TakeResult, UsageCounter } from "../../core/policy/limits.js";

export interface MemoryCounterOptions {
  limit: number;
  windowS: number;
  /** A refused take still counts (the breaker); otherwise it is given back. */
  staysTripped?: boolean;
  now?: () => number;
}

export function createMemoryUsageCounter(opts: MemoryCounterOptions): UsageCounter {
  const now = opts.now ?? Date.now;
  // The Redis limiter's `points`: a limit of 0 (no limit) still counts against 1; callers skip it.
  const points = Math.max(1, opts.limit);
  const windows = new Map<string, { used: number; endsAt: number }>();

  function current(key: string): { used: number; endsAt: number } | undefined {
    const w = windows.get(key);
    if (w && w.endsAt <= now()) {
      windows.delete(key);
      return undefined;
    }
    return w;
  }

  /** Adds `amount` (negative: gives back), opening a window when none is running. */
  function add(key: string, amount: number): { used: number; endsAt: number } {
    const w = current(key) ?? { used: 0, endsAt: now() + opts.windowS * 1000 };
    w.used += amount;
    windows.set(key, w);
    return w;
  }

  return {
    limit: opts.limit,
    async take(key, amount): Promise<TakeResult> {
      if (amount <= 0) return { ok: true };
      const w = add(key, amount);
      if (w.used <= points) return { ok: true };
      if (!opts.staysTripped) w.used -= amount;
      return { ok: false, retryAfterMs: w.endsAt - now(), tripped: w.used - (opts.staysTripped ? amount : 0) <= opts.limit };
    },
    async peek(key) {
      const w = current(key);
      return w ? { used: w.used, resetInMs: w.endsAt - now() } : { used: 0, resetInMs: 0 };
    },
    async give(key, amount) {
      if (amount > 0) add(key, -amount);
    },
    async reset(key) {
      windows.delete(key);
    },
  };
}
