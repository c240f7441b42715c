// Links and webhook targets remembered in memory (read-cache.ts), on a real Redis: a change made through
// the store is seen at once, one made elsewhere within the cache time, and a lookup that races a change never
// stores the old answer.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { keys } from "../../src/adapters/redis/keys.js";
import { createRedisLinkStore } from "../../src/adapters/redis/link-store.js";
import { createReadCache } from "../../src/adapters/redis/read-cache.js";
import { createRedisWebhookStore } from "../../src/adapters/redis/webhook-store.js";
import { createSecretBox } from "../../src/secrets.js";
import { redisClientForFile } from "../support/redis.js";

const r = redisClientForFile();

test("a link or unlink through the store is seen at once, in both directions", async () => {
  const links = createRedisLinkStore(r(), createReadCache(60_000));
  assert.equal(await links.phoneOf("a@example.com"), undefined); // remembered as unlinked
  assert.equal(await links.jidOf("+15550000001"), undefined);
  await links.link("a@example.com", "+15550000001");
  assert.equal(await links.phoneOf("a@example.com"), "+15550000001");
  assert.equal(await links.jidOf("+15550000001"), "a@example.com");
  await links.link("a@example.com", "+15550000002"); // a new number replaces the old one
  assert.equal(await links.jidOf("+15550000001"), undefined);
  assert.equal(await links.phoneOf("a@example.com"), "+15550000002");
  await links.unlink("a@example.com");
  assert.equal(await links.phoneOf("a@example.com"), undefined);
  assert.equal(await links.jidOf("+15550000002"), undefined);
});

test("a change made elsewhere is seen once the cache time has passed, not before", async () => {
  const links = createRedisLinkStore(r(), createReadCache(300));
  const elsewhere = createRedisLinkStore(r()); // another instance
  assert.equal(await links.phoneOf("b@example.com"), undefined);
  await elsewhere.link("b@example.com", "+15550000003");
  assert.equal(await links.phoneOf("b@example.com"), undefined, "answered from memory within the cache time");
  await sleep(350);
  assert.equal(await links.phoneOf("b@example.com"), "+15550000003");
  await r().del([keys.userNumbers("b@example.com"), keys.numberUsers("+15550000003")]); // an edit in Redis
  await sleep(350);
  assert.equal(await links.phoneOf("b@example.com"), undefined);
});

test("a lookup whose answer arrives after a change does not remember the old answer", async () => {
  const links = createRedisLinkStore(r(), createReadCache(60_000));
  await links.link("c@example.com", "+15550000004");
  // Issued before the unlink, answered with the old link after it started.
  const racing = links.phoneOf("c@example.com");
  const unlinked = links.unlink("c@example.com");
  assert.equal(await racing, "+15550000004");
  await unlinked;
  assert.equal(await links.phoneOf("c@example.com"), undefined);
});

test("with no cache every lookup asks Redis", async () => {
  const links = createRedisLinkStore(r());
  const elsewhere = createRedisLinkStore(r());
  assert.equal(await links.jidOf("+15550000005"), undefined);
  await elsewhere.link("d@example.com", "+15550000005");
  assert.equal(await links.jidOf("+15550000005"), "d@example.com");
});

test("webhook targets: a put, a token rotation or a delete through the store is seen at once", async () => {
  const cache = createReadCache(60_000);
  const box = createSecretBox(randomBytes(32).toString("base64"));
  const hooks = createRedisWebhookStore(r(), box, Date.now, cache);
  const made = await hooks.put("deploybot", { url: "https://one.example/hook", allow: ["a@example.com"] });
  assert.ok(made.token && made.secret);
  assert.equal((await hooks.get("deploybot"))?.url, "https://one.example/hook");
  assert.equal(await hooks.checkToken("deploybot", made.token), true);
  assert.equal(await hooks.signingSecret("deploybot"), made.secret);

  await hooks.put("deploybot", { url: "https://two.example/hook", allow: ["a@example.com"], secret: "a-new-secret-of-enough-length" });
  assert.equal((await hooks.get("deploybot"))?.url, "https://two.example/hook");
  assert.equal(await hooks.signingSecret("deploybot"), "a-new-secret-of-enough-length");

  const rotated = await hooks.rotateToken("deploybot");
  assert.ok(rotated);
  assert.equal(await hooks.checkToken("deploybot", made.token), false, "the old token stops working at once");
  assert.equal(await hooks.checkToken("deploybot", rotated), true);

  assert.equal(await hooks.delete("deploybot"), true);
  assert.equal(await hooks.get("deploybot"), undefined);
  assert.equal(await hooks.checkToken("deploybot", rotated), false);
});

test("webhook targets: a token rotated elsewhere is refused here once the cache time has passed", async () => {
  const box = createSecretBox(randomBytes(32).toString("base64"));
  const here = createRedisWebhookStore(r(), box, Date.now, createReadCache(300));
  const elsewhere = createRedisWebhookStore(r(), box);
  const made = await elsewhere.put("alerts", { url: "https://one.example/hook", allow: ["*@example.com"] });
  assert.equal(await here.checkToken("alerts", made.token!), true);
  const rotated = await elsewhere.rotateToken("alerts");
  await sleep(350);
  assert.equal(await here.checkToken("alerts", made.token!), false);
  assert.equal(await here.checkToken("alerts", rotated!), true);
});
