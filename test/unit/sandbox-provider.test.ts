import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { createSandboxProvider } from "../../src/adapters/sandbox/provider.js";
import { createSandboxWebhooks } from "../../src/adapters/sandbox/webhooks.js";
import type { MessageStatus } from "../../src/core/model/message.js";
import { ProviderError } from "../../src/core/ports.js";

function recorder() {
  const seen: [string, string, MessageStatus][] = [];
  let notify: (() => void) | undefined;
  return {
    seen,
    onStatus(id: string, providerId: string, status: MessageStatus) {
      seen.push([id, providerId, status]);
      notify?.();
    },
    async until(n: number, timeoutMs = 1000) {
      const deadline = Date.now() + timeoutMs;
      while (seen.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${seen.length} statuses`);
        await new Promise<void>((r) => {
          notify = r;
          // Ref'd on purpose: the provider's own timers are unref'd and would let the loop exit.
          setTimeout(r, 20);
        });
      }
    },
  };
}

test("send records the message and plays sent → delivered", async () => {
  const rec = recorder();
  const sb = createSandboxProvider({ onStatus: (...a) => rec.onStatus(...a) });
  const r = await sb.send({ id: "01ABC", from: "+15550001111", to: "+15552223333", body: "hi", mediaUrls: ["https://x.test/a.jpg"] });
  assert.match(r.providerId, /^SB[0-9a-f]{32}$/);
  assert.equal(r.status, "queued");

  const [m] = sb.messages();
  assert.ok(m);
  assert.equal(m.direction, "out");
  assert.equal(m.id, "01ABC");
  assert.deepEqual(m.media, ["https://x.test/a.jpg"]);
  assert.ok(!Number.isNaN(Date.parse(m.at)));

  await rec.until(2);
  assert.deepEqual(rec.seen, [
    ["01ABC", r.providerId, "sent"],
    ["01ABC", r.providerId, "delivered"],
  ]);
  assert.equal(sb.messages()[0]?.status, "delivered");
  // Nothing signs the sandbox's webhooks: its routes take the admin token instead (src/http/server.ts).
  assert.deepEqual(await createSandboxWebhooks().authenticate("status", { url: "http://x", headers: {}, body: {} }), {});
  await sb.close();
});

test("a throwing onStatus does not stop the lifecycle and is reported", async () => {
  const errors: unknown[] = [];
  const statuses: MessageStatus[] = [];
  const sb = createSandboxProvider({
    stepMs: 5,
    onStatus: (_id, _p, s) => {
      statuses.push(s);
      if (s === "sent") throw new Error("boom");
    },
    onError: (e) => errors.push(e),
  });
  await sb.send({ id: "1", from: "+15550001111", to: "+15552223333", body: "x", mediaUrls: [] });
  // Awaited, not slept on: a loaded machine runs the 5 ms steps late.
  for (const end = Date.now() + 3000; statuses.length < 2 && Date.now() < end;) await sleep(5);
  assert.deepEqual(statuses, ["sent", "delivered"]);
  assert.equal(errors.length, 1);
  await sb.close();
});

test("close cancels pending status steps", async () => {
  const statuses: MessageStatus[] = [];
  const sb = createSandboxProvider({ stepMs: 20, onStatus: (_i, _p, s) => void statuses.push(s) });
  await sb.send({ id: "1", from: "+15550001111", to: "+15552223333", body: "x", mediaUrls: [] });
  await sb.close();
  await sleep(60);
  assert.deepEqual(statuses, []);
});

test("the list is bounded to the newest entries and includes inbound ones", async () => {
  const sb = createSandboxProvider({ onStatus: () => {}, limit: 3 });
  for (let i = 0; i < 4; i++) await sb.send({ id: `o${i}`, from: "+15550001111", to: "+15552223333", body: `m${i}`, mediaUrls: [] });
  const inbound = sb.recordInbound({ id: "SMin", from: "+15552223333", to: "+15550001111", body: "reply" });
  assert.equal(inbound.direction, "in");
  assert.equal(inbound.status, "received");
  assert.deepEqual(
    sb.messages().map((m) => m.id),
    ["o2", "o3", "SMin"],
  );
  // Returned entries are copies: callers cannot corrupt the store.
  sb.messages()[0]!.media.push("x");
  assert.deepEqual(sb.messages()[0]?.media, []);
  await sb.close();
});

test("Twilio's magic test numbers fail like Twilio", async () => {
  const sb = createSandboxProvider({ onStatus: () => {} });
  await assert.rejects(
    sb.send({ id: "1", from: "+15550001111", to: "+15005550001", body: "x", mediaUrls: [] }),
    (e: unknown) => e instanceof ProviderError && e.failure.kind === "permanent" && e.failure.code === 21211,
  );
  assert.deepEqual(sb.messages(), []);
  await sb.close();
});

test("lookup finds an unclaimed sent message by content, like Twilio's", async () => {
  const sb = createSandboxProvider({ onStatus: () => undefined });
  try {
    const since = Date.now();
    const req = { id: "01LOOK", from: "+15550001111", to: "+15552223333", body: "same", mediaUrls: [] };
    const a = await sb.send(req);
    const b = await sb.send({ ...req, id: "01LOOK2" });
    const claimed = new Set([a.providerId]);
    const isClaimed = async (sid: string) => claimed.has(sid);
    assert.deepEqual(await sb.lookup({ ...req, since, isClaimed }), { found: { providerId: b.providerId, status: "queued" } });
    claimed.add(b.providerId);
    assert.deepEqual(await sb.lookup({ ...req, since, isClaimed }), { notFound: true });
    assert.deepEqual(await sb.lookup({ ...req, to: "+15559990000", since, isClaimed: async () => false }), { notFound: true });
  } finally {
    await sb.close();
  }
});

test("onMessage hears each new message and each status change, until unsubscribed (the web phone's feed)", async () => {
  const rec = recorder();
  const sb = createSandboxProvider({ stepMs: 5, onStatus: (...a) => rec.onStatus(...a) });
  const heard: [string, string, MessageStatus][] = [];
  const off = sb.onMessage((m) => {
    heard.push([m.direction, m.id, m.status]);
    m.body = "changed by a listener"; // a copy: the kept message is not touched
  });
  const throwing = sb.onMessage(() => {
    throw new Error("a bad listener");
  });
  sb.recordInbound({ id: "IN1", from: "+15552223333", to: "+15550001111", body: "hello" });
  await sb.send({ id: "OUT1", from: "+15550001111", to: "+15552223333", body: "hi", mediaUrls: [] });
  await rec.until(2);
  assert.deepEqual(heard, [
    ["in", "IN1", "received"],
    ["out", "OUT1", "queued"],
    ["out", "OUT1", "sent"],
    ["out", "OUT1", "delivered"],
  ]);
  assert.deepEqual(
    sb.messages().map((m) => m.body),
    ["hello", "hi"],
  );
  off();
  throwing();
  sb.recordInbound({ id: "IN2", from: "+15552223333", to: "+15550001111", body: "again" });
  assert.equal(heard.length, 4);
  await sb.close();
});
