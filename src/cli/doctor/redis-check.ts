// Check 2: Redis answers, and persists (AOF): without it a restart loses every link and queued message.
// Also says how the gateway reaches it (REDIS_URL, or the primary the Sentinels name) and, with replicas,
// how many are connected and in sync (REDIS_MIN_REPLICAS refuses acknowledged writes without them).
import { openRedis, redisTarget, type Redis, type RedisSettings } from "../../adapters/redis/client.js";
import { inSync, readReplication } from "../../adapters/redis/replicas.js";
import { fail, ok, safeUrl, type Check } from "./types.js";

const FIX_AOF = "set appendonly yes (redis-cli CONFIG SET appendonly yes, and in redis.conf so it survives a restart; appendfsync always for strict durability)";

export interface RedisResult {
  check: Check;
  /** Open while the doctor runs (link listing without a gateway); the caller closes it with close(). */
  redis?: Redis;
  close(): Promise<void>;
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

/** The replicas line of the report, and a failure when REDIS_MIN_REPLICAS cannot be met. */
async function replicaState(redis: Redis, required: number): Promise<{ text: string; short?: string }> {
  const { replicas } = await readReplication(redis);
  const synced = replicas.filter(inSync).length;
  const text = `${replicas.length} replica${replicas.length === 1 ? "" : "s"} connected, ${synced} in sync${required > 0 ? ` (REDIS_MIN_REPLICAS=${required})` : ""}`;
  return synced < required ? { text, short: `${synced} of the ${required} replicas REDIS_MIN_REPLICAS requires are in sync` } : { text };
}

export async function checkRedis(settings: RedisSettings & { REDIS_MIN_REPLICAS: number }, timeoutMs = 3000): Promise<RedisResult> {
  const target = redisTarget(settings);
  const sentinel = !("url" in target);
  const shown = "url" in target ? safeUrl(target.url) : `the Sentinels ${settings.REDIS_SENTINELS?.join(",")} (primary "${target.name}")`;
  const fixReach =
    "url" in target
      ? "start Redis, or set REDIS_URL to where it runs (redis://[user:password@]host:port[/db])"
      : "check REDIS_SENTINELS (the Sentinels' host:port), REDIS_SENTINEL_NAME (the name of their `sentinel monitor` line), the passwords (REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD), and that the primary they name is reachable from here";
  // Each distinct error once, in order: the Sentinel client reports a cause, then its consequences.
  const errors = new Set<string>();
  const conn = await openRedis(target, { error: (err) => void errors.add(err.message) }, { commandTimeoutMs: timeoutMs, reconnectMaxMs: 1000 }, timeoutMs);
  const redis = conn.redis;
  const close = () => conn.close().catch(() => undefined);
  if (!redis.isReady) {
    await close();
    const why = [...errors].slice(0, 3).join("; ");
    return { close, check: fail("redis", `Redis does not answer at ${shown}${why ? ` (${why})` : ""}`, fixReach) };
  }
  const primary = conn.primary();
  const where = sentinel ? `Sentinel mode: ${shown} name the primary ${primary ? `${primary.host}:${primary.port}` : "(none ready)"}` : `reachable at ${shown}`;
  try {
    await redis.ping();
  } catch (e) {
    return {
      redis,
      close,
      check: fail(
        "redis",
        `Redis at ${shown} refuses commands: ${(e as Error).message}`,
        sentinel
          ? "REDIS_PASSWORD must be the primary's password, and the primary must not be loading or read-only"
          : "REDIS_URL needs the user and password Redis expects (redis://user:password@host:port), and a Redis that is not loading or read-only",
      ),
    };
  }
  try {
    const aof = await aofState(redis);
    if (!aof.on) {
      return {
        redis,
        close,
        check: fail("redis", `Redis at ${shown} answers but does not persist to an append-only file (${aof.how}): a restart loses every link and queued message`, FIX_AOF),
      };
    }
    const replicas = sentinel || settings.REDIS_MIN_REPLICAS > 0 ? await replicaState(redis, settings.REDIS_MIN_REPLICAS) : undefined;
    const detail = [where, `${aof.how}${aof.fsync ? ` (appendfsync ${aof.fsync})` : ""}`, ...(replicas ? [replicas.text] : [])].join(", ");
    if (replicas?.short) {
      return {
        redis,
        close,
        check: fail(
          "redis",
          `${detail}: ${replicas.short}, so every write the gateway would acknowledge is refused (inbound SMS wait in the journal)`,
          "start the replicas (replicaof the primary) or repair their link to it, or lower REDIS_MIN_REPLICAS",
        ),
      };
    }
    return { redis, close, check: ok("redis", detail) };
  } catch (e) {
    return { redis, close, check: fail("redis", `Redis at ${shown} answers, but its persistence or replication could not be read: ${(e as Error).message}`, FIX_AOF) };
  }
}
