// The delivery engine on a real Redis: an entry handed to this consumer by a read whose reply never arrived
// (Redis died, or the link broke, after XREADGROUP ran) is picked up as soon as reading works again,
// not only when XAUTOCLAIM (PIPELINE_CLAIM_IDLE_MS, 60 s here) would hand it over.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { connectRedis, type RedisClient } from "../../src/adapters/redis/client.js";
import { GROUP, keys } from "../../src/adapters/redis/keys.js";
import { createRedisDelivery } from "../../src/adapters/redis/delivery.js";
import type { DeliveryEngine } from "../../src/core/delivery/engine.js";
import type { XmppDelivery } from "../../src/core/model/message.js";
import { createLogger } from "../../src/logger.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { waitUntil } from "../support/wait.js";

let server: RedisServer;
let redis: RedisClient;
let admin: RedisClient;
let delivery: DeliveryEngine;
const delivered: string[] = [];

const chat = (id: string): XmppDelivery => ({ kind: "chat", id, from: "+15552223333@sms.example.com", to: "alice@example.com", body: id, mediaUrls: [], acceptedAt: Date.now() });

before(async () => {
  server = await startRedis();
  redis = await connectRedis(server.url, () => undefined);
  admin = await connectRedis(server.url, () => undefined);
  delivery = createRedisDelivery(redis, createLogger("silent"), { partitions: 1, dedupeTtlS: 60, consumerName: "gw-1", blockMs: 300, claimIdleMs: 60_000 });
  delivery.consume({
    toXmpp: { deliver: async (item) => void delivered.push(item.id), barrier: async () => new Map() },
    outbound: async () => undefined,
  });
});

after(async () => {
  await delivery?.stop();
  redis?.destroy();
  admin?.destroy();
  await server?.stop();
});

test("an entry whose read reply was lost is delivered once reading resumes", async () => {
  await delivery.enqueueToXmpp(chat("first"));
  await waitUntil(() => delivered.includes("first"), { what: "the consumer runs", timeoutMs: 5000, intervalMs: 20 });

  // What a lost reply leaves behind: the entry is pending for gw-1, which never saw it. XADD and the
  // read run in one transaction, so the consumer's own blocked read cannot take it first.
  const stream = keys.toXmppStream(0);
  const replies = await admin
    .multi()
    .xAdd(stream, "*", { d: JSON.stringify(chat("lost-reply")) })
    .xReadGroup(GROUP, "gw-1", { key: stream, id: ">" }, { COUNT: 10 })
    .exec();
  assert.ok(JSON.stringify(replies).includes("lost-reply"), "pending for gw-1");
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(!delivered.includes("lost-reply"), "the consumer did not see it");

  // The consumer's blocked read breaks (as when Redis goes away); it reconnects and reads again.
  const list = await admin.clientList();
  const readers = list.filter((c) => c.cmd === "xreadgroup");
  assert.ok(readers.length > 0, "a blocked reader");
  for (const c of readers) await admin.clientKill({ filter: "ID", id: Number(c.id) });

  await waitUntil(() => delivered.includes("lost-reply"), { what: "delivered long before XAUTOCLAIM (60 s) would hand it over", timeoutMs: 10_000, intervalMs: 20 });
});
