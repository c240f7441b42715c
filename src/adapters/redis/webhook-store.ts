// Webhook targets in Redis: one hash per target and a set of names for listing. The inbound token is
// kept only as a SHA-256 hash; the signing secret is sealed under SECRETS_KEY, bound to the target's
// name (so a sealed value copied to another target does not decrypt there).
import { createHash, timingSafeEqual } from "node:crypto";
import { webhookNameProblem } from "../../core/model/addresses.js";
import type { WebhookStore, WebhookTarget } from "../../core/ports.js";
import { GatewayError } from "../../errors.js";
import { hashToken, NO_SECRETS_KEY, newSecret, newToken, type SecretBox } from "../../secrets.js";
import type { Redis } from "./client.js";
import { keys } from "./keys.js";
import { createReadCache, type ReadCache } from "./read-cache.js";
import { runScript } from "./scripts.js";

// KEYS: webhook(name), webhooks. ARGV: name, url, allow JSON, now, token hash, sealed given secret
// ('' = keep / generate), sealed generated secret ('' = none available).
// Returns {status, createdAt}: 0 = updated, 1 = created, 2 = would create but no secret can be stored.
// One script so that two concurrent first PUTs cannot both "create" (and hand out two tokens).
const PUT = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'url', ARGV[2], 'allow', ARGV[3], 'updatedAt', ARGV[4])
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'secret', ARGV[6]) end
  return {0, redis.call('HGET', KEYS[1], 'createdAt')}
end
local secret = ARGV[6]
if secret == '' then secret = ARGV[7] end
if secret == '' then return {2, ''} end
redis.call('HSET', KEYS[1], 'url', ARGV[2], 'allow', ARGV[3], 'secret', secret, 'tokenHash', ARGV[5], 'createdAt', ARGV[4], 'updatedAt', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
return {1, ARGV[4]}
`;

// KEYS: webhook(name). ARGV: token hash, now. Returns 1 when rotated, 0 when there is no such target
// (never recreates a half hash for a target deleted meanwhile).
const ROTATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'tokenHash', ARGV[1], 'updatedAt', ARGV[2])
return 1
`;

// KEYS: webhook(name), webhooks. ARGV: name. Returns 1 when something was deleted.
const DELETE = `
redis.call('SREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
`;

// Compared against when a target has no stored hash, so an unknown name costs the same as a wrong token.
const NO_HASH = createHash("sha256").update("no such target").digest();

const secretContext = (name: string) => `webhook:${name}`;

function toTarget(name: string, h: Record<string, string>): WebhookTarget | undefined {
  if (!h.url) return undefined;
  const allow: unknown = JSON.parse(h.allow ?? "[]");
  return {
    name,
    url: h.url,
    allow: Array.isArray(allow) ? allow.filter((a): a is string => typeof a === "string") : [],
    createdAt: Number(h.createdAt),
    updatedAt: Number(h.updatedAt),
  };
}

/** `cache`: where targets may be remembered (read-cache.ts); absent: always ask Redis. */
export function createRedisWebhookStore(redis: Redis, box: SecretBox, clock: () => number = Date.now, cache: ReadCache = createReadCache(0)): WebhookStore {
  const valid = (name: string) => webhookNameProblem(name) === undefined;
  // The whole hash, read once for the target, its token check and its secret (each message needs two).
  const row = (name: string) => cache.read(`webhook:${name}`, () => redis.hGetAll(keys.webhook(name)));
  // Opening a sealed secret is an AES-GCM decryption; remembered with the row it came from.
  const secretOf = (name: string, sealed: string) => cache.read(`secret:${name}:${sealed}`, async () => box.open(sealed, secretContext(name)));

  return {
    async put(name, input) {
      const problem = webhookNameProblem(name);
      if (problem) throw new GatewayError("bad_request", problem, { field: "name" });
      const context = secretContext(name);
      // Sealing a given secret needs the key whether this creates or updates: fail before touching Redis.
      const sealedGiven = input.secret === undefined ? "" : box.seal(input.secret, context);
      // Made up front (cheap); used only if the script finds nothing to update.
      const token = newToken();
      const generated = input.secret === undefined && box.enabled ? newSecret() : undefined;
      const sealedGenerated = generated === undefined ? "" : box.seal(generated, context);
      const now = clock();
      const [status, createdAt] = (await cache.change(() =>
        runScript(redis, PUT, {
          keys: [keys.webhook(name), keys.webhooks],
          arguments: [name, input.url, JSON.stringify(input.allow), String(now), hashToken(token), sealedGiven, sealedGenerated],
        }),
      )) as [number, string];
      if (status === 2) throw new GatewayError("unavailable", NO_SECRETS_KEY);
      const target: WebhookTarget = { name, url: input.url, allow: [...input.allow], createdAt: Number(createdAt), updatedAt: now };
      if (status === 0) return { created: false, target };
      return { created: true, target, token, ...(generated === undefined ? {} : { secret: generated }) };
    },

    async get(name) {
      if (!valid(name)) return undefined;
      return toTarget(name, await row(name));
    },

    async list() {
      const names = (await redis.sMembers(keys.webhooks)).sort();
      const hashes = await Promise.all(names.map((n) => redis.hGetAll(keys.webhook(n))));
      return names.flatMap((n, i) => toTarget(n, hashes[i]!) ?? []);
    },

    async delete(name) {
      if (!valid(name)) return false;
      return (await cache.change(() => runScript(redis, DELETE, { keys: [keys.webhook(name), keys.webhooks], arguments: [name] }))) === 1;
    },

    async rotateToken(name) {
      if (!valid(name)) return undefined;
      const token = newToken();
      const done = await cache.change(() => runScript(redis, ROTATE, { keys: [keys.webhook(name)], arguments: [hashToken(token), String(clock())] }));
      return done === 1 ? token : undefined;
    },

    async checkToken(name, token) {
      const stored = valid(name) ? (await row(name)).tokenHash : undefined;
      const expected = stored && /^[0-9a-f]{64}$/.test(stored) ? Buffer.from(stored, "hex") : NO_HASH;
      // Both sides are 32-byte digests, so timingSafeEqual never throws and the time says nothing.
      return timingSafeEqual(Buffer.from(hashToken(token), "hex"), expected) && expected !== NO_HASH;
    },

    async signingSecret(name) {
      if (!valid(name)) return undefined;
      const sealed = (await row(name)).secret;
      return sealed ? secretOf(name, sealed) : undefined;
    },
  };
}
