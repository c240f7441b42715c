// Leases and the live-instance list (core/cluster/lease-store.ts) in Redis. Expiry is the Redis server's
// (PX, and TIME inside the heartbeat script), so the instances' own clocks never have to agree.
import type { LeaseStore } from "../../core/cluster/lease-store.js";
import { isRedisUnavailable, type Redis } from "./client.js";
import { keys } from "./keys.js";
import { runScript } from "./scripts.js";

// KEYS: lease, token counter. ARGV: holder, ttl. The new fencing token, or nil when it is held.
// The token is also at least the server's time in ms: a counter lost in a Sentinel failover (replication
// is asynchronous) does not start again from a token an earlier holder already had.
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
local t = redis.call('TIME')
local floor = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token = redis.call('INCR', KEYS[2])
if token < floor then
  token = floor
  redis.call('SET', KEYS[2], token)
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token
`;

// KEYS: the leases. ARGV: ttl, then each lease's value ("holder|token"). 1 where it was still ours.
const RENEW = `
local kept = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    kept[i] = 1
  else
    kept[i] = 0
  end
end
return kept
`;

// KEYS: lease. ARGV: value ("holder|token").
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

// KEYS: live instances (zset), this instance's key. ARGV: instance, nonce, ttl.
// {1, live…} after recording it, or {0, live…} when another process holds the name.
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local current = redis.call('GET', KEYS[2])
local ours = 1
if current and current ~= ARGV[2] then
  ours = 0
else
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
end
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
table.insert(live, 1, ours)
return live
`;

// KEYS: live instances, this instance's key. ARGV: instance, nonce.
const LEAVE = `
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
`;

export function createRedisLeases(redis: Redis): LeaseStore {
  const value = (holder: string, token: number) => `${holder}|${token}`;
  return {
    async acquire(name, holder, ttlMs) {
      const token = await runScript(redis, ACQUIRE, { keys: [keys.lease(name), keys.leaseToken(name)], arguments: [holder, String(ttlMs)] });
      return token === null || token === undefined ? undefined : Number(token);
    },
    async renew(leases, holder, ttlMs) {
      if (leases.length === 0) return [];
      const kept = (await runScript(redis, RENEW, { keys: leases.map((l) => keys.lease(l.name)), arguments: [String(ttlMs), ...leases.map((l) => value(holder, l.token))] })) as number[];
      return kept.map((k) => Number(k) === 1);
    },
    async release(lease, holder) {
      await runScript(redis, RELEASE, { keys: [keys.lease(lease.name)], arguments: [value(holder, lease.token)] });
    },
    async holderOf(name) {
      const [v, ttl] = await Promise.all([redis.get(keys.lease(name)), redis.pTTL(keys.lease(name))]);
      if (!v) return undefined;
      const cut = v.lastIndexOf("|");
      return { holder: v.slice(0, cut), token: Number(v.slice(cut + 1)), ttlMs: Math.max(0, Number(ttl)) };
    },
    async heartbeat(instance, nonce, ttlMs) {
      const res = (await runScript(redis, HEARTBEAT, { keys: [keys.instances, keys.instance(instance)], arguments: [instance, nonce, String(ttlMs)] })) as [number, ...string[]];
      const [ours, ...live] = res;
      return { taken: Number(ours) !== 1, live: live.map(String).sort() };
    },
    async leave(instance, nonce) {
      await runScript(redis, LEAVE, { keys: [keys.instances, keys.instance(instance)], arguments: [instance, nonce] });
    },
    isUnavailable: isRedisUnavailable,
  };
}
