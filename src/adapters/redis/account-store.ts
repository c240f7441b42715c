// Users' own Twilio accounts (REGISTRATION=byo) in Redis. The Auth Token is sealed under SECRETS_KEY,
// bound to its AccountSid (a sealed value copied to another account's hash does not decrypt). One
// account may carry several users' numbers, so its credentials go only with the last of them.
import type { AccountStore } from "../../core/ports.js";
import type { SecretBox } from "../../secrets.js";
import type { Redis } from "./client.js";
import { keys } from "./keys.js";
import { runScript } from "./scripts.js";

// The JID's previous registration is left first, so a JID is only ever under one account.
// KEYS: userAccount(jid), account(sid), accountNumbers(sid). ARGV: jid, phone, sid, sealed token, account key prefix.
const PUT = `
local prev = redis.call('GET', KEYS[1])
if prev then
  local numbers = ARGV[5] .. prev .. ':numbers'
  for _, n in ipairs(redis.call('HKEYS', numbers)) do
    if redis.call('HGET', numbers, n) == ARGV[1] then redis.call('HDEL', numbers, n) end
  end
  if prev ~= ARGV[3] and redis.call('EXISTS', numbers) == 0 then redis.call('DEL', ARGV[5] .. prev) end
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'authToken', ARGV[4])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
return 1
`;

// KEYS: userAccount(jid). ARGV: jid, account key prefix. Returns the AccountSid it was under, or ''.
const REMOVE = `
local sid = redis.call('GET', KEYS[1])
if not sid then return '' end
redis.call('DEL', KEYS[1])
local numbers = ARGV[2] .. sid .. ':numbers'
for _, n in ipairs(redis.call('HKEYS', numbers)) do
  if redis.call('HGET', numbers, n) == ARGV[1] then redis.call('HDEL', numbers, n) end
end
if redis.call('EXISTS', numbers) == 0 then redis.call('DEL', ARGV[2] .. sid) end
return sid
`;

const ACCOUNT_PREFIX = keys.account("");
const context = (accountSid: string) => `twilio-account:${accountSid}`;

export function createRedisAccountStore(redis: Redis, box: SecretBox): AccountStore {
  return {
    canStore: box.enabled,

    async put(jid, phone, creds) {
      // Sealing first: without SECRETS_KEY this throws before anything is written.
      const sealed = box.seal(creds.authToken, context(creds.accountSid));
      await runScript(redis, PUT, {
        keys: [keys.userAccount(jid), keys.account(creds.accountSid), keys.accountNumbers(creds.accountSid)],
        arguments: [jid, phone, creds.accountSid, sealed, ACCOUNT_PREFIX],
      });
    },

    async accountOf(jid) {
      return (await redis.get(keys.userAccount(jid))) ?? undefined;
    },

    async credentials(accountSid) {
      const [sealed, numbers] = await Promise.all([redis.hGet(keys.account(accountSid), "authToken"), redis.hKeys(keys.accountNumbers(accountSid))]);
      if (!sealed) return undefined;
      return { authToken: box.open(sealed, context(accountSid)), numbers };
    },

    async remove(jid) {
      const sid = (await runScript(redis, REMOVE, { keys: [keys.userAccount(jid)], arguments: [jid, ACCOUNT_PREFIX] })) as string;
      return sid ? { accountSid: sid } : {};
    },
  };
}
