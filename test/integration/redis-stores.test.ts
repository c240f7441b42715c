// The Redis adapters against the port contracts (test/support/contracts/); the in-memory adapters the
// flows' unit tests use run the same cases in test/unit/memory-adapters.test.ts. Then what only Redis
// does: the reconciliation lock renewed while held, and lost to nobody but its lifetime.
import assert from "node:assert/strict";
import { test } from "node:test";
import { keys, RECONCILE_STATE_TTL_S } from "../../src/adapters/redis/keys.js";
import { createRedisAccountStore } from "../../src/adapters/redis/account-store.js";
import { createRedisLinkStore } from "../../src/adapters/redis/link-store.js";
import { createRedisMediaTokens } from "../../src/adapters/redis/media-tokens.js";
import { createRedisMessageStore } from "../../src/adapters/redis/message-store.js";
import { createRedisIntroductionStore, createRedisOptOutStore } from "../../src/adapters/redis/opt-out-store.js";
import { createRedisReconcileState } from "../../src/adapters/redis/reconcile-state.js";
import { createRedisUsageCounter } from "../../src/adapters/redis/usage-counter.js";
import { createRedisWebhookStore } from "../../src/adapters/redis/webhook-store.js";
import { createSecretBox } from "../../src/secrets.js";
import { accountStoreContract } from "../support/contracts/account-store.js";
import { linkStoreContract } from "../support/contracts/link-store.js";
import { mediaTokensContract } from "../support/contracts/media-tokens.js";
import { messageStoreContract } from "../support/contracts/message-store.js";
import { optOutStoreContract } from "../support/contracts/opt-out-store.js";
import { reconcileStateContract } from "../support/contracts/reconcile-state.js";
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
reconcileStateContract("redis reconcile state", async () => (await empty(), createRedisReconcileState(redis())));

test("redis reconcile lock: renewed while held (well past its lifetime), released only by its holder; a lapsed holder learns it lost it", async () => {
  await empty();
  const state = createRedisReconcileState(redis());
  const lock = await state.lock(300);
  assert.ok(lock);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(lock.held(), true);
  assert.equal(await state.lock(300), undefined, "still held after three lifetimes");
  // Another instance takes it after this one stalled past its lifetime (played by replacing the token).
  await redis().set(keys.reconcileLock, "someone-else", { expiration: { type: "PX", value: 60_000 } });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(lock.held(), false, "the renewal saw it gone");
  await lock.release();
  assert.equal(await redis().get(keys.reconcileLock), "someone-else", "not released by the old holder");
});

test("redis reconcile state: cursors and the last run's time expire (RECONCILE_STATE_TTL_S), renewed by each run", async () => {
  await empty();
  const state = createRedisReconcileState(redis());
  await state.advanceCursor("ACx", 1_000);
  await state.markRun(2_000);
  for (const key of [keys.reconcileCursor("ACx"), keys.reconcileLast]) {
    const ttl = await redis().ttl(key);
    assert.ok(ttl > RECONCILE_STATE_TTL_S - 10 && ttl <= RECONCILE_STATE_TTL_S, `${key}: ${ttl}`);
  }
});
