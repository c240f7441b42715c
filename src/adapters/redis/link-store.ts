// User ⇄ number links in Redis. Sets on both sides so that one JID can later hold several numbers and
// one number can later be shared; today's rule (one each) is enforced atomically in one script.
import { GatewayError } from "../../errors.js";
import type { LinkStore } from "../../core/ports.js";
import type { Redis } from "./client.js";
import { keys } from "./keys.js";
import { createReadCache, type ReadCache } from "./read-cache.js";
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

/** `cache`: where phoneOf/jidOf answers may be remembered (read-cache.ts); absent: always ask Redis. */
export function createRedisLinkStore(redis: Redis, cache: ReadCache = createReadCache(0)): LinkStore {
  const lookup = (key: string) => cache.read(key, async () => (await redis.sMembers(key)).sort()[0]);
  return {
    link: (jid, phone) =>
      cache.change(async () => {
        const res = (await runScript(redis, LINK, { keys: [keys.userNumbers(jid), keys.numberUsers(phone), keys.users], arguments: [jid, phone, NUMBER_PREFIX] })) as [number, string];
        if (res[0] === 0) throw new GatewayError("conflict", `The number ${phone} is already linked to another account.`, { field: "phone" });
        return res[0] === 1 ? { created: true } : { created: false, ...(res[1] ? { previous: res[1] } : {}) };
      }),
    unlink: (jid) => cache.change(async () => (await runScript(redis, UNLINK, { keys: [keys.userNumbers(jid), keys.users], arguments: [jid, NUMBER_PREFIX] })) === 1),
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
