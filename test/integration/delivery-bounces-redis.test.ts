// Bounces toward XMPP on a real Redis: a bounced entry is written again only after its backoff, never
// while an earlier write of it still waits for its barrier; the rest of its conversation waits with it,
// other conversations do not; a delivery that goes through after a bounce is acknowledged, not
// dead-lettered. The XMPP side is a recording sink here; test/integration/durability.test.ts (i) runs
// the same through a real XMPP server.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { connectRedis, type RedisClient } from "../../src/adapters/redis/client.js";
import { keys } from "../../src/adapters/redis/keys.js";
import { createRedisDelivery } from "../../src/adapters/redis/delivery.js";
import type { DeliveryEngine } from "../../src/core/delivery/engine.js";
import { deliveryKey, type XmppDelivery } from "../../src/core/model/message.js";
import type { XmppSink } from "../../src/core/ports.js";
import { createLogger } from "../../src/logger.js";
import { startRedis, type RedisServer } from "../support/redis.js";

const RETRY_MS = 700;
let server: RedisServer;
let redis: RedisClient;
let delivery: DeliveryEngine;

const chat = (id: string, to: string): XmppDelivery => ({ kind: "chat", id, from: "+15552223333@sms.example.com", to, body: id, mediaUrls: [], acceptedAt: Date.now() });

/** Records writes; a barrier proves the writes before it after 200 ms, bouncing the first write of each id in `bounceOnce`. */
function recordingSink(bounceOnce: Set<string>) {
  const writes: { id: string; seq: number; at: number; proven: boolean }[] = [];
  const twiceInFlight: string[] = [];
  const sink: XmppSink = {
    async deliver(item) {
      if (writes.some((w) => w.id === item.id && !w.proven)) twiceInFlight.push(item.id);
      writes.push({ id: item.id, seq: writes.length + 1, at: Date.now(), proven: false });
    },
    async barrier() {
      const mark = writes.length;
      await new Promise((r) => setTimeout(r, 200));
      const bounced = new Map<string, string>();
      for (const w of writes.slice(0, mark)) {
        if (w.proven) continue;
        w.proven = true;
        if (bounceOnce.delete(w.id)) bounced.set(deliveryKey(chat(w.id, "")), "service-unavailable");
      }
      return bounced;
    },
  };
  return { sink, writes, twiceInFlight };
}

const bounceOnce = new Set(["x"]);
const recorded = recordingSink(bounceOnce);

before(async () => {
  server = await startRedis();
  redis = await connectRedis(server.url, () => undefined);
  delivery = createRedisDelivery(redis, createLogger("silent"), { partitions: 1, dedupeTtlS: 60, consumerName: "gw-1", blockMs: 300, maxBounces: 3, bounceRetryMs: RETRY_MS });
  delivery.consume({ toXmpp: recorded.sink, outbound: async () => undefined });
});

after(async () => {
  await delivery?.stop();
  redis?.destroy();
  await server?.stop();
});

test("a bounced entry waits its backoff with its conversation, is written once more, and is acknowledged", async () => {
  await delivery.enqueueToXmpp(chat("x", "alice@example.com"));
  await delivery.enqueueToXmpp(chat("y", "alice@example.com")); // after x in the same conversation
  await delivery.enqueueToXmpp(chat("z", "bob@example.com")); // another conversation
  const end = Date.now() + 10_000;
  const writesOf = (id: string) => recorded.writes.filter((w) => w.id === id);
  while (writesOf("x").length < 2 || writesOf("y").length < 1) {
    assert.ok(Date.now() < end, `x written twice and y once: ${JSON.stringify(recorded.writes)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 3 * RETRY_MS)); // room for any wrong extra write
  assert.deepEqual(recorded.twiceInFlight, [], "never written while an earlier write of it waited for its barrier");
  assert.equal(writesOf("x").length, 2, "the bounced write and one more");
  assert.equal(writesOf("z").length, 1);
  const [x1, x2] = writesOf("x");
  assert.ok(x2!.at - x1!.at >= RETRY_MS, `waited the backoff (${x2!.at - x1!.at} ms)`);
  // y came after x: it was either written with x's first write (before the bounce was known) and not
  // again, or held and written after x's second write. Either way, once.
  const y = writesOf("y");
  assert.equal(y.length, 1);
  assert.ok(y[0]!.seq < x2!.seq ? y[0]!.seq > x1!.seq : true, "y never overtakes x");
  assert.ok(writesOf("z")[0]!.at < x2!.at, "another conversation does not wait for x");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await redis.xLen(keys.toXmppStream(0)), 0, "everything acknowledged");
  assert.equal(await redis.xLen(keys.deadLetters), 0, "nothing dead-lettered");
});
