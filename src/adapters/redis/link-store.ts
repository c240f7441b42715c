// User ⇄ number links in Redis. Sets on both sides so that one JID can later hold several numbers and
// one number can later be shared; today's rule (one each) is enforced atomically in one script.
import { GatewayError } from "../../errors.js";
import type { LinkStore } from "../../core/ports.js";
import type { Redis } from "./client.js";
import { keys } from "./keys.js";
import { runScript } from "./scripts.js";

// KEYS: userNumbers(jid), numberUsers(phone), users. ARGV: jid, phone, prefix of numberUsers keys.
// Returns {status, previous}: status 0 = taken by another JID, 1 = created, 2 = replaced/unchanged.
const LINK = `
local holders = redis.call('SMEMBERS', KEYS[2])
for _, h in ipairs(holders) do
  if h ~= ARGV[1] then return {0, h} end
end
local previous = redis.call('SMEMBERS', KEYS[1])
local prev = ''
for _, p in ipairs(previous) do
  if p ~= ARGV[2] then
    redis.call('SREM', ARGV[3] .. p .. ':users', ARGV[1])
    redis.call('SREM', KEYS[1], p)
    prev = p
  end
end
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
if #previous == 0 then return {1, ''} end
return {2, prev}
`;

// KEYS: userNumbers(jid), users. ARGV: jid, prefix of numberUsers keys. Returns 1 if a link existed.
const UNLINK = `
local numbers = redis.call('SMEMBERS', KEYS[1])
for _, p in ipairs(numbers) do redis.call('SREM', ARGV[2] .. p .. ':users', ARGV[1]) end
redis.call('DEL', KEYS[1])
return redis.call('SREM', KEYS[2], ARGV[1])
`;

const NUMBER_PREFIX = keys.numberUsers("").replace(/:users$/, "");

/**
 * `rememberMs`: how long this process may answer phoneOf/jidOf from memory (every message asks one or
 * both; links change rarely). Links changed through this store are forgotten at once; the time bounds
 * how long a change made elsewhere (another instance, an edit in Redis) can go unseen. 0: always ask.
 */
export function createRedisLinkStore(redis: Redis, opts: { rememberMs?: number } = {}): LinkStore {
  const rememberMs = opts.rememberMs ?? 0;
  const answers = new Map<string, { answer: string | undefined; until: number }>();
  // Bumped by every change: a read that started before a change must not store its (old) answer.
  let generation = 0;
  async function lookup(key: string): Promise<string | undefined> {
    if (rememberMs <= 0) return (await redis.sMembers(key)).sort()[0];
    const now = Date.now();
    const known = answers.get(key);
    if (known && known.until > now) return known.answer;
    const asked = generation;
    const answer = (await redis.sMembers(key)).sort()[0];
    if (asked === generation) {
      if (answers.size >= 50_000) answers.clear(); // a bound, not an LRU: refilled within rememberMs
      answers.set(key, { answer, until: now + rememberMs });
    }
    return answer;
  }
  function changed(): void {
    generation++;
    answers.clear();
  }
  return {
    async link(jid, phone) {
      changed();
      try {
        const res = (await runScript(redis, LINK, { keys: [keys.userNumbers(jid), keys.numberUsers(phone), keys.users], arguments: [jid, phone, NUMBER_PREFIX] })) as [number, string];
        if (res[0] === 0) throw new GatewayError("conflict", `The number ${phone} is already linked to another account.`, { field: "phone" });
        return res[0] === 1 ? { created: true } : { created: false, ...(res[1] ? { previous: res[1] } : {}) };
      } finally {
        changed();
      }
    },
    async unlink(jid) {
      changed();
      try {
        return (await runScript(redis, UNLINK, { keys: [keys.userNumbers(jid), keys.users], arguments: [jid, NUMBER_PREFIX] })) === 1;
      } finally {
        changed();
      }
    },
    phoneOf: (jid) => lookup(keys.userNumbers(jid)),
    jidOf: (phone) => lookup(keys.numberUsers(phone)),
    async list() {
      const jids = (await redis.sMembers(keys.users)).sort();
      const out: { jid: string; phone: string }[] = [];
      for (const jid of jids) {
        const phone = (await redis.sMembers(keys.userNumbers(jid))).sort()[0];
        if (phone) out.push({ jid, phone });
      }
      return out;
    },
  };
}
