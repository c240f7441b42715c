// UsageCounter (core/policy/limits.ts) on rate-limiter-flexible's Redis limiter: one atomic Lua INCRBY with
// expiry per take, so every gateway instance counts against the same windows.
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import type { TakeResult, UsageCounter } from "../../core/policy/limits.js";
import type { Redis } from "./client.js";
import { keys } from "./keys.js";

export interface CounterOptions {
  /** Names the counter in its Redis keys. */
  name: string;
  limit: number;
  windowS: number;
  /**
   * A refused take still counts, so the counter stays over its limit until the window ends (a
   * breaker); otherwise a refused take is given back (a quota: refused messages cost nothing).
   */
  staysTripped?: boolean;
}

export function createRedisUsageCounter(redis: Redis, opts: CounterOptions): UsageCounter {
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    useRedisPackage: true,
    keyPrefix: keys.limitPrefix(opts.name),
    points: Math.max(1, opts.limit),
    duration: opts.windowS,
  });
  return {
    limit: opts.limit,
    async take(key, amount): Promise<TakeResult> {
      if (amount <= 0) return { ok: true };
      try {
        await limiter.consume(key, amount);
        return { ok: true };
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        if (!opts.staysTripped) await limiter.reward(key, amount);
        return { ok: false, retryAfterMs: rejection.msBeforeNext, tripped: rejection.consumedPoints - amount <= opts.limit };
      }
    },
    async peek(key) {
      const res = await limiter.get(key);
      return res ? { used: res.consumedPoints, resetInMs: res.msBeforeNext } : { used: 0, resetInMs: 0 };
    },
    async give(key, amount) {
      if (amount > 0) await limiter.reward(key, amount);
    },
    async reset(key) {
      await limiter.delete(key);
    },
  };
}
