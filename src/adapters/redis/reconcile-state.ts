// Reconciliation's state in Redis (core/ports.ts ReconcileState), shared by every instance: a cursor
// per provider account, since when each linked number has had its owner, the time of the last run, and a lock so that one instance reconciles at a time.
// The lock is SET NX PX with a random token, renewed while held and released only by its holder (a
// compare-and-delete), so an instance that stalled past the lock's lifetime cannot free another's.
import { randomBytes } from "node:crypto";
import type { HeldLock, ReconcileState } from "../../core/ports.js";
import type { Redis } from "./client.js";
import { keys, RECONCILE_STATE_TTL_S } from "./keys.js";
import { runScript } from "./scripts.js";

// KEYS: cursor. ARGV: at (ms), ttl s. Moves forward only.
const ADVANCE_CURSOR = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
`;

// KEYS: linked-numbers hash. ARGV: firstSeen, ttl s, then number, owner, … Each field is "owner|since"; one with
// another owner starts again from firstSeen; fields of numbers not given are removed. Returns the
// since of each number given, in order.
const LINKED_SINCE = `
local given = {}
local out = {}
for i = 3, #ARGV, 2 do
  local number, owner = ARGV[i], ARGV[i + 1]
  given[number] = true
  local was = redis.call('HGET', KEYS[1], number)
  local wasOwner, since = nil, nil
  if was then wasOwner, since = string.match(was, '^(.*)|(%d+)$') end
  if wasOwner ~= owner or not since then
    since = ARGV[1]
    redis.call('HSET', KEYS[1], number, owner .. '|' .. since)
  end
  out[#out + 1] = since
end
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if not given[field] then redis.call('HDEL', KEYS[1], field) end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return out
`;

// KEYS: lock. ARGV: token, ttl ms. 1 while the token holds it (renewed), 0 once lost.
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

// KEYS: lock. ARGV: token.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export function createRedisReconcileState(redis: Redis, opts: { onRenewError?(err: unknown): void } = {}): ReconcileState {
  const number = (v: string | null | undefined): number | undefined => (v === null || v === undefined || !Number.isFinite(Number(v)) ? undefined : Number(v));
  return {
    async cursor(account) {
      return number(await redis.get(keys.reconcileCursor(account)));
    },
    async advanceCursor(account, at) {
      await runScript(redis, ADVANCE_CURSOR, { keys: [keys.reconcileCursor(account)], arguments: [String(Math.floor(at)), String(RECONCILE_STATE_TTL_S)] });
    },
    async linkedSince(account, links, firstSeen) {
      const res = (await runScript(redis, LINKED_SINCE, {
        keys: [keys.reconcileLinked(account)],
        arguments: [String(Math.floor(firstSeen)), String(RECONCILE_STATE_TTL_S), ...links.flatMap((l) => [l.number, l.owner])],
      })) as string[];
      return new Map(links.map((l, i) => [l.number, Number(res[i])]));
    },
    async lastRun() {
      return number(await redis.get(keys.reconcileLast));
    },
    async markRun(at) {
      await redis.set(keys.reconcileLast, String(Math.floor(at)), { expiration: { type: "EX", value: RECONCILE_STATE_TTL_S } });
    },
    async lock(ttlMs): Promise<HeldLock | undefined> {
      const token = randomBytes(16).toString("hex");
      if ((await redis.set(keys.reconcileLock, token, { condition: "NX", expiration: { type: "PX", value: ttlMs } })) !== "OK") return undefined;
      let held = true;
      // Renewed at a third of its lifetime: two renewals may fail (a Redis hiccup) before it lapses.
      const timer = setInterval(
        () => {
          runScript(redis, RENEW, { keys: [keys.reconcileLock], arguments: [token, String(ttlMs)] }).then(
            (r) => {
              if (r !== 1) {
                held = false;
                clearInterval(timer);
              }
            },
            (err: unknown) => opts.onRenewError?.(err),
          );
        },
        Math.max(100, Math.floor(ttlMs / 3)),
      );
      timer.unref();
      return {
        held: () => held,
        async release() {
          clearInterval(timer);
          if (!held) return;
          held = false;
          await runScript(redis, RELEASE, { keys: [keys.reconcileLock], arguments: [token] });
        },
      };
    },
  };
}
