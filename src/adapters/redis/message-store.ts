// Message records as Redis hashes. Status moves are one script, so concurrent callbacks (which Twilio
// may send out of order) can never move a message backwards.
import { isFinal, isMessageStatus, statusRank, type MessageRecord } from "../../core/model/message.js";
import type { AttemptState, MessageStore } from "../../core/ports.js";
import type { Redis } from "./client.js";
import { keys, RECORD_MAX_AGE_S } from "./keys.js";
import { runScript } from "./scripts.js";

// The forward-only move, shared by the scripts below. Expects `status`, `rank`, `final`, `errorCode`
// locals, KEYS[3] = the awaiting-status index, ARGV[6] = now, ARGV[7] = retention s. A final status
// takes the message off the index (reconciliation has nothing left to ask). Returns {changed, flat hash}.
const MOVE_FORWARD = `
local changed = 0
local current = tonumber(redis.call('HGET', KEYS[1], 'rank') or '0')
if redis.call('HGET', KEYS[1], 'final') ~= '1' and rank > current then
  redis.call('HSET', KEYS[1], 'status', status, 'rank', tostring(rank), 'final', final, 'updatedAt', ARGV[6])
  if errorCode ~= '' then redis.call('HSET', KEYS[1], 'errorCode', errorCode) end
  if final == '1' then
    redis.call('EXPIRE', KEYS[1], ARGV[7])
    redis.call('ZREM', KEYS[3], string.match(KEYS[1], '[^:]+$'))
  end
  changed = 1
end
return {changed, redis.call('HGETALL', KEYS[1])}
`;

// A status the gateway established itself (the create's answer, a lookup, the sandbox). The first
// provider id recorded is the message's; a status callback held because it came before (CALLBACK) counts
// now if it named that id, and the others are dropped. Recording the provider id of a message that is
// not final puts it on the awaiting-status index, due at once (reconciliation decides when to ask), and
// drops index entries older than any record can be.
// KEYS: record, sid map (or record again when no sid), awaiting-status index. ARGV: status, rank,
// final(0/1), sid, errorCode, now, retention s, oldest index score kept. Returns {changed, flat hash} or
// nil when the record does not exist.
const ADVANCE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local status, rank, final, errorCode = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[5]
if ARGV[4] ~= '' and redis.call('HSETNX', KEYS[1], 'providerId', ARGV[4]) == 1 then
  redis.call('SET', KEYS[2], string.match(KEYS[1], '[^:]+$'), 'EX', ARGV[7])
  if redis.call('HGET', KEYS[1], 'final') ~= '1' then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[8])
    redis.call('ZADD', KEYS[3], 'NX', ARGV[6], string.match(KEYS[1], '[^:]+$'))
  end
  local held = redis.call('HGET', KEYS[1], 'early:' .. ARGV[4])
  if held then
    local r, s, f, e = string.match(held, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    if r and tonumber(r) > rank then status, rank, final, errorCode = s, tonumber(r), f, e end
  end
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 6) == 'early:' then redis.call('HDEL', KEYS[1], field) end
  end
end
${MOVE_FORWARD}`;

/** Fields a record may reach with held callbacks; more are not held (only its own account can add them). */
const MAX_RECORD_FIELDS = 40;

// A provider's status callback, signed by ARGV[8] (the account whose token validated it; '' for none).
// It counts only when that account sent the message (a record without `account` predates the field) and
// its SID is the message's provider id. Before the create's answer records that id, the callback is held
// in the record (`early:<sid>` = "rank|status|final|errorCode", the highest rank per SID) for ADVANCE.
// KEYS: record, sid map, awaiting-status index. ARGV: status, rank, final, sid, errorCode, now, retention s, signer.
// Returns {0} unknown, {-1} another account, {-2} another provider id, {2} held, {1, changed, flat hash}.
const CALLBACK = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local h = redis.call('HMGET', KEYS[1], 'account', 'providerId')
if h[1] and h[1] ~= ARGV[8] then return {-1} end
if h[2] and h[2] ~= ARGV[4] then return {-2} end
if not h[2] then
  local field = 'early:' .. ARGV[4]
  local prev = redis.call('HGET', KEYS[1], field)
  if not prev and redis.call('HLEN', KEYS[1]) >= ${MAX_RECORD_FIELDS} then return {2} end
  if not prev or tonumber(string.match(prev, '^[^|]*')) < tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[1], field, ARGV[2] .. '|' .. ARGV[1] .. '|' .. ARGV[3] .. '|' .. ARGV[5])
  end
  return {2}
end
local status, rank, final, errorCode = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[5]
local r = (function() ${MOVE_FORWARD} end)()
return {1, r[1], r[2]}
`;

// Provider attempts live in the record hash (fields `attempt`, `attempts`, `firstAttemptAt`), so they
// expire with it. Starting one is a compare-and-set on the count: of two workers holding the same job
// (one taking over work it believed abandoned), only one can start the next request.
// KEYS: record. ARGV: expected count, now. Returns {count, firstAttemptAt} or nil.
const BEGIN_ATTEMPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local count = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if count ~= tonumber(ARGV[1]) then return nil end
redis.call('HSETNX', KEYS[1], 'firstAttemptAt', ARGV[2])
redis.call('HSET', KEYS[1], 'attempt', 'inflight', 'attempts', count + 1)
return {count + 1, redis.call('HGET', KEYS[1], 'firstAttemptAt')}
`;

// beginAttempt for a message that is pending, has no SID and no request in doubt; anything else is
// returned for the caller to decide. KEYS: record. ARGV: now.
// Returns nil (no record), {1, count, firstAttemptAt} (begun) or {0, flat hash} (left as it was).
const START_SENDING = `
local h = redis.call('HMGET', KEYS[1], 'status', 'providerId', 'attempt', 'attempts')
if not h[1] and redis.call('EXISTS', KEYS[1]) == 0 then return nil end
if h[1] == 'pending' and not h[2] and h[3] ~= 'inflight' then
  local count = tonumber(h[4] or '0') + 1
  redis.call('HSETNX', KEYS[1], 'firstAttemptAt', ARGV[1])
  redis.call('HSET', KEYS[1], 'attempt', 'inflight', 'attempts', count)
  return {1, count, redis.call('HGET', KEYS[1], 'firstAttemptAt')}
end
return {0, redis.call('HGETALL', KEYS[1])}
`;

// A new record and its lifetime in one step. KEYS: record. ARGV: ttl s, then field, value, ...
const CREATE = `
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
`;

// KEYS: record. Never creates a hash (it would have no TTL).
const CLEAR_ATTEMPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'attempt', 'clear') end
return 1
`;

// KEYS: record. ARGV: field, now. 1 = marked now, 0 = marked before or no record. Never creates a hash
// (a record that expired meanwhile would come back as a one-field hash without a TTL).
const MARK_ONCE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
`;

export function createRedisMessageStore(redis: Redis, opts: { retentionS: number }): MessageStore {
  return {
    async create(r) {
      await runScript(redis, CREATE, { keys: [keys.message(r.id)], arguments: [String(isFinal(r.status) ? opts.retentionS : RECORD_MAX_AGE_S), ...Object.entries(serialize(r)).flat()] });
    },
    async get(id) {
      const h = await redis.hGetAll(keys.message(id));
      return Object.keys(h).length ? deserialize(h) : undefined;
    },
    async advance(id, status, patch) {
      const sid = patch?.providerId ?? "";
      const now = Date.now();
      const res = (await runScript(redis, ADVANCE, {
        keys: [keys.message(id), sid ? keys.providerId(sid) : keys.message(id), keys.awaitingStatus],
        arguments: [
          status,
          String(statusRank(status)),
          isFinal(status) ? "1" : "0",
          sid,
          patch?.errorCode === undefined ? "" : String(patch.errorCode),
          String(now),
          String(opts.retentionS),
          String(now - RECORD_MAX_AGE_S * 1000),
        ],
      })) as [number, string[]] | null;
      if (!res) return undefined;
      return { record: deserialize(fromFlat(res[1])), changed: res[0] === 1 };
    },
    async callback(id, cb) {
      const res = (await runScript(redis, CALLBACK, {
        keys: [keys.message(id), keys.providerId(cb.providerId), keys.awaitingStatus],
        arguments: [
          cb.status,
          String(statusRank(cb.status)),
          isFinal(cb.status) ? "1" : "0",
          cb.providerId,
          cb.errorCode === undefined ? "" : String(cb.errorCode),
          String(Date.now()),
          String(opts.retentionS),
          cb.account ?? "",
        ],
      })) as [number, number?, string[]?];
      switch (res[0]) {
        case 0:
          return { outcome: "unknown" };
        case -1:
          return { outcome: "refused", why: "account" };
        case -2:
          return { outcome: "refused", why: "provider-id" };
        case 2:
          return { outcome: "held" };
        default:
          return { outcome: "applied", record: deserialize(fromFlat(res[2] ?? [])), changed: res[1] === 1 };
      }
    },
    async markOnce(id, what) {
      return (await runScript(redis, MARK_ONCE, { keys: [keys.message(id)], arguments: [`once:${what}`, String(Date.now())] })) === 1;
    },
    async idForProviderId(sid) {
      return (await redis.get(keys.providerId(sid))) ?? undefined;
    },
    async startSending(id) {
      const res = (await runScript(redis, START_SENDING, { keys: [keys.message(id)], arguments: [String(Date.now())] })) as [1, number, string] | [0, string[]] | null;
      if (!res) return undefined;
      if (res[0] === 1) return { begun: { state: "inflight", count: Number(res[1]), firstAt: Number(res[2]) } };
      return withAttempt(fromFlat(res[1]));
    },
    async beginAttempt(id, expectedCount) {
      const res = (await runScript(redis, BEGIN_ATTEMPT, { keys: [keys.message(id)], arguments: [String(expectedCount), String(Date.now())] })) as [number, string] | null;
      if (!res) return undefined;
      return { state: "inflight", count: Number(res[0]), firstAt: Number(res[1]) };
    },
    async clearAttempt(id) {
      await runScript(redis, CLEAR_ATTEMPT, { keys: [keys.message(id)], arguments: [] });
    },
    async dueStatusChecks(upTo, limit) {
      const ids = await redis.zRangeByScore(keys.awaitingStatus, "-inf", Number.isFinite(upTo) ? upTo : "+inf", { LIMIT: { offset: 0, count: limit } });
      return ids.map(String);
    },
    async scheduleStatusCheck(id, at) {
      // XX: a message that left the index meanwhile (its final status came) is not put back.
      if (at === undefined) await redis.zRem(keys.awaitingStatus, id);
      else await redis.zAdd(keys.awaitingStatus, { score: at, value: id }, { condition: "XX" });
    },
  };
}

/** HGETALL as a script returns it (field, value, ...) as an object. */
function fromFlat(flat: string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  return h;
}

function withAttempt(h: Record<string, string>): { record: MessageRecord; attempt: AttemptState } {
  const attempt: AttemptState = { state: h.attempt === "inflight" || h.attempt === "clear" ? h.attempt : "none", count: Number(h.attempts ?? 0) || 0 };
  if (h.firstAttemptAt) attempt.firstAt = Number(h.firstAttemptAt);
  return { record: deserialize(h), attempt };
}

function serialize(r: MessageRecord): Record<string, string> {
  const h: Record<string, string> = {
    id: r.id,
    direction: r.direction,
    channel: r.channel,
    jid: r.jid,
    contactJid: r.contactJid,
    receiptRequested: r.receiptRequested ? "1" : "0",
    status: r.status,
    rank: String(statusRank(r.status)),
    final: isFinal(r.status) ? "1" : "0",
    createdAt: String(r.createdAt),
    updatedAt: String(r.updatedAt),
  };
  if (r.stanzaId !== undefined) h.stanzaId = r.stanzaId;
  if (r.providerId !== undefined) h.providerId = r.providerId;
  if (r.account !== undefined) h.account = r.account;
  if (r.errorCode !== undefined) h.errorCode = String(r.errorCode);
  return h;
}

function deserialize(h: Record<string, string>): MessageRecord {
  const status = h.status && isMessageStatus(h.status) ? h.status : "pending";
  return {
    id: h.id ?? "",
    direction: h.direction === "in" ? "in" : "out",
    channel: h.channel === "webhook" ? "webhook" : "sms", // as stored (every record has it)
    jid: h.jid ?? "",
    contactJid: h.contactJid ?? "",
    receiptRequested: h.receiptRequested === "1",
    status,
    createdAt: Number(h.createdAt ?? 0),
    updatedAt: Number(h.updatedAt ?? 0),
    ...(h.stanzaId !== undefined ? { stanzaId: h.stanzaId } : {}),
    ...(h.providerId !== undefined ? { providerId: h.providerId } : {}),
    ...(h.account !== undefined ? { account: h.account } : {}),
    ...(h.errorCode !== undefined ? { errorCode: Number(h.errorCode) } : {}),
  };
}
