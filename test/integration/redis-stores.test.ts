// The Redis adapters against the port contracts (test/support/contracts/); the in-memory adapters the
// flows' unit tests use run the same cases in test/unit/memory-adapters.test.ts.
import { createRedisAccountStore } from "../../src/adapters/redis/account-store.js";
import { createRedisLinkStore } from "../../src/adapters/redis/link-store.js";
import { createRedisMediaTokens } from "../../src/adapters/redis/media-tokens.js";
import { createRedisMessageStore } from "../../src/adapters/redis/message-store.js";
import { createRedisIntroductionStore, createRedisOptOutStore } from "../../src/adapters/redis/opt-out-store.js";
import { createRedisUsageCounter } from "../../src/adapters/redis/usage-counter.js";
import { createRedisWebhookStore } from "../../src/adapters/redis/webhook-store.js";
import { createSecretBox } from "../../src/secrets.js";
import { accountStoreContract } from "../support/contracts/account-store.js";
import { linkStoreContract } from "../support/contracts/link-store.js";
import { mediaTokensContract } from "../support/contracts/media-tokens.js";
import { messageStoreContract } from "../support/contracts/message-store.js";
import { optOutStoreContract } from "../support/contracts/opt-out-store.js";
import { usageCounterContract } from "../support/contracts/usage-counter.js";
import { webhookStoreContract } from "../support/contracts/webhook-store.js";
import { redisClientForFile } from "../support/redis.js";

const redis = redisClientForFile();
const KEY = Buffer.alloc(32, 7).toString("base64");
const empty = async () => void (await redis().flushAll());

messageStoreContract("redis message store", async () => (await empty(), createRedisMessageStore(redis(), { retentionS: 3600 })));
linkStoreContract("redis link store", async () => (await empty(), createRedisLinkStore(redis())));

let counters = 0;
usageCounterContract("redis usage counter", {
  make: async (o) => (await empty(), createRedisUsageCounter(redis(), { name: `contract-${++counters}`, ...o })),
  pass: (ms) => new Promise((r) => setTimeout(r, ms)),
});

webhookStoreContract("redis webhook store", async ({ withKey }) => (await empty(), createRedisWebhookStore(redis(), createSecretBox(withKey ? KEY : undefined))));
accountStoreContract("redis account store", async ({ withKey }) => (await empty(), createRedisAccountStore(redis(), createSecretBox(withKey ? KEY : undefined))));
optOutStoreContract("redis opt-out and introduction stores", async () => (await empty(), { optOuts: createRedisOptOutStore(redis()), introductions: createRedisIntroductionStore(redis()) }));
mediaTokensContract("redis media tokens", async () => (await empty(), createRedisMediaTokens(redis())));
