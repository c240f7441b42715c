// Check 2: Redis answers, and persists (AOF): without it a restart loses every link and queued message.
import { connectRedis, type Redis } from "../../adapters/redis/client.js";
import { fail, ok, safeUrl, type Check } from "./types.js";

const FIX_AOF = "set appendonly yes (redis-cli CONFIG SET appendonly yes, and in redis.conf so it survives a restart; appendfsync always for strict durability)";

export interface RedisResult {
  check: Check;
  /** Open while the doctor runs (link listing without a gateway); the caller destroys it. */
  redis?: Redis;
}

/** appendonly from CONFIG GET, or (CONFIG renamed or forbidden) aof_enabled from INFO persistence. */
async function aofState(redis: Redis): Promise<{ on: boolean; how: string; fsync?: string }> {
  try {
    const cfg = await redis.configGet("appendonly");
    const value = cfg["appendonly"];
    if (value !== undefined) {
      const fsync = (await redis.configGet("appendfsync").catch(() => ({}) as Record<string, string>))["appendfsync"];
      return { on: value === "yes", how: `appendonly ${value}`, ...(fsync ? { fsync } : {}) };
    }
  } catch {
    // CONFIG disabled (rename-command) or not allowed for this user: INFO still tells.
  }
  const info = await redis.info("persistence");
  const m = /^aof_enabled:(\d)/m.exec(info);
  if (!m) throw new Error("neither CONFIG GET appendonly nor INFO persistence tells whether AOF is on");
  return { on: m[1] === "1", how: `aof_enabled:${m[1]}` };
}

export async function checkRedis(url: string, timeoutMs = 3000): Promise<RedisResult> {
  const shown = safeUrl(url);
  let lastError = "";
  const redis = await connectRedis(url, (err) => (lastError = err.message), { commandTimeoutMs: timeoutMs, reconnectMaxMs: 1000 }, timeoutMs);
  if (!redis.isReady) {
    redis.destroy();
    return {
      check: fail("redis", `Redis does not answer at ${shown}${lastError ? ` (${lastError})` : ""}`, "start Redis, or set REDIS_URL to where it runs (redis://[user:password@]host:port[/db])"),
    };
  }
  try {
    await redis.ping();
  } catch (e) {
    return {
      redis,
      check: fail(
        "redis",
        `Redis at ${shown} refuses commands: ${(e as Error).message}`,
        "REDIS_URL needs the user and password Redis expects (redis://user:password@host:port), and a Redis that is not loading or read-only",
      ),
    };
  }
  try {
    const aof = await aofState(redis);
    if (!aof.on) {
      return {
        redis,
        check: fail("redis", `Redis at ${shown} answers but does not persist to an append-only file (${aof.how}): a restart loses every link and queued message`, FIX_AOF),
      };
    }
    return { redis, check: ok("redis", `reachable at ${shown}, ${aof.how}${aof.fsync ? ` (appendfsync ${aof.fsync})` : ""}`) };
  } catch (e) {
    return { redis, check: fail("redis", `Redis at ${shown} answers, but its persistence could not be read: ${(e as Error).message}`, FIX_AOF) };
  }
}
