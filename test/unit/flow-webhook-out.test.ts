// XMPP → webhook target, the delivering side (core/flows/webhook-out.ts through core/flows/xmpp-out.ts) on the
// in-memory adapters: what is POSTed and signed, and every outcome — delivered (a receipt, or the bot's
// reply), refused (an error reply naming why), unreachable until the deadline (a dead letter), the target
// removed meanwhile, a job already settled. No HTTP, no Redis, no XMPP server.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMemoryLinkStore } from "../../src/adapters/memory/link-store.js";
import { createMemoryMessageStore } from "../../src/adapters/memory/message-store.js";
import { createMemoryDelivery } from "../../src/adapters/memory/delivery.js";
import { createScriptedSmsProvider } from "../../src/adapters/memory/sms-provider.js";
import { createScriptedWebhookSender } from "../../src/adapters/memory/webhook-sender.js";
import { createMemoryWebhookStore } from "../../src/adapters/memory/webhook-store.js";
import type { WebhookJob, XmppDelivery } from "../../src/core/model/message.js";
import { createOutbound } from "../../src/core/flows/xmpp-out.js";
import { GiveUp, type WebhookResult } from "../../src/core/ports.js";
import { SendInterrupted } from "../../src/core/util/sleep.js";

const DOMAIN = "sms.example.com";
const ALICE = "alice@example.com";
const quiet = { info() {}, warn() {}, error() {} };

async function setup(answers: WebhookResult[] = [], o: { deadlineMs?: number; receipt?: boolean; realSleep?: boolean } = {}) {
  const messages = createMemoryMessageStore();
  const delivery = createMemoryDelivery({ messages });
  const webhooks = createMemoryWebhookStore();
  const { secret } = await webhooks.put("deploybot", { url: "https://bot.example/in", allow: [ALICE] });
  const sender = createScriptedWebhookSender({ answers });
  const sleeps: number[] = [];
  const outbound = createOutbound({
    links: createMemoryLinkStore(),
    messages,
    delivery,
    provider: createScriptedSmsProvider(),
    log: quiet,
    retry: { baseMs: 100, deadlineMs: 60_000 },
    applyStatus: async () => undefined,
    webhooks: { store: webhooks, sender, deadlineMs: o.deadlineMs ?? 60_000 },
    domain: DOMAIN,
    ...(o.realSleep ? {} : { sleep: async (ms: number) => void sleeps.push(ms) }),
  });
  const accepted = await outbound.accept({
    from: `${ALICE}/phone`,
    fromBare: ALICE,
    toLocal: "deploybot",
    to: `deploybot@${DOMAIN}`,
    stanzaId: "s1",
    type: "chat",
    body: "deploy main",
    oobUrls: [],
    encrypted: false,
    receiptRequested: o.receipt ?? true,
  });
  const [job] = delivery.outbound() as WebhookJob[];
  assert.ok(accepted.outcome === "queued" && job);
  const toXmpp = () => delivery.toXmpp().filter((i) => i.kind !== "chat" || i.from === `deploybot@${DOMAIN}`);
  return { outbound, messages, delivery, webhooks, sender, sleeps, job, secret: secret!, toXmpp };
}

const errorOf = (items: XmppDelivery[]) => items.find((i): i is Extract<XmppDelivery, { kind: "error" }> => i.kind === "error");

test("delivered: POSTed once, signed with the target's secret; the message is delivered and its receipt sent once", async () => {
  const t = await setup();
  await t.outbound.process(t.job);
  assert.equal(t.sender.posts.length, 1);
  const [post] = t.sender.posts;
  assert.deepEqual([post?.url, post?.secret], ["https://bot.example/in", t.secret]);
  assert.deepEqual(post?.payload, { id: t.job.id, from: ALICE, to: `deploybot@${DOMAIN}`, body: "deploy main", timestamp: new Date(t.job.acceptedAt).toISOString() });
  assert.equal((await t.messages.get(t.job.id))?.status, "delivered");
  assert.deepEqual(t.toXmpp(), [{ kind: "receipt", id: t.job.id, from: `deploybot@${DOMAIN}`, to: `${ALICE}/phone`, receiptFor: "s1" }]);
  await t.outbound.process(t.job);
  assert.equal(t.sender.posts.length, 1, "a settled message is not POSTed again (a redelivery after a stop)");
  assert.equal(t.toXmpp().length, 1);
});

test("the bot's reply comes back as a chat to the user's bare JID, instead of a receipt; no receipt asked, none sent", async () => {
  const t = await setup([{ kind: "ok", status: 200, reply: "deploying main now" }]);
  await t.outbound.process(t.job);
  const [reply] = t.toXmpp();
  assert.ok(reply?.kind === "chat");
  assert.deepEqual([reply.from, reply.to, reply.body], [`deploybot@${DOMAIN}`, ALICE, "deploying main now"]);
  const quietBot = await setup([], { receipt: false });
  await quietBot.outbound.process(quietBot.job);
  assert.deepEqual(quietBot.toXmpp(), []);
});

test("refused: the message fails with the HTTP status, and the user gets one error reply saying what the receiver answered", async () => {
  const cases: [number | undefined, string][] = [
    [404, "item-not-found"],
    [401, "not-allowed"],
    [403, "not-allowed"],
    [410, "gone"],
    [413, "not-acceptable"],
    [301, "redirect"],
    [422, "undefined-condition"],
    [undefined, "undefined-condition"],
  ];
  for (const [status, condition] of cases) {
    const t = await setup([{ kind: "permanent", ...(status ? { status } : {}), excerpt: "no such route" }]);
    await t.outbound.process(t.job);
    const record = await t.messages.get(t.job.id);
    assert.deepEqual([record?.status, record?.errorCode], ["failed", status], String(status));
    const err = errorOf(t.toXmpp());
    assert.deepEqual([err?.condition, err?.type, err?.replyTo], [condition, "cancel", "s1"], String(status));
    assert.equal(err?.text, `deploybot@${DOMAIN} did not take the message: ${status ? `HTTP ${status}: ` : ""}no such route`);
  }
});

test("unreachable: retried with backoff, honouring a longer Retry-After, then delivered", async () => {
  const t = await setup([
    { kind: "retry", reason: "connection refused" },
    { kind: "retry", reason: "HTTP 503", status: 503, retryAfterMs: 5000 },
  ]);
  await t.outbound.process(t.job);
  assert.equal(t.sender.posts.length, 3);
  assert.equal(t.sleeps.length, 2);
  assert.ok(t.sleeps[0]! >= 50 && t.sleeps[0]! < 100, `backoff: ${t.sleeps[0]}`);
  assert.ok(t.sleeps[1]! >= 5000, `Retry-After: ${t.sleeps[1]}`);
  assert.equal((await t.messages.get(t.job.id))?.status, "delivered");
});

test("unreachable past the deadline: given up without waiting (the engine dead-letters it and tells the user), the message failed", async () => {
  const t = await setup([{ kind: "retry", reason: "HTTP 503", status: 503, retryAfterMs: 5000 }], { deadlineMs: 1000 });
  await assert.rejects(t.outbound.process(t.job), (e: unknown) => e instanceof GiveUp && /could not be reached within 1 s \(last: HTTP 503\)/.test(e.message));
  assert.deepEqual([t.sender.posts.length, t.sleeps.length], [1, 0]);
  assert.equal((await t.messages.get(t.job.id))?.status, "failed");
});

test("the target removed before delivery: failed, and the user is told it was removed", async () => {
  const t = await setup();
  await t.webhooks.delete("deploybot");
  await t.outbound.process(t.job);
  assert.equal(t.sender.posts.length, 0);
  assert.equal((await t.messages.get(t.job.id))?.status, "failed");
  const err = errorOf(t.toXmpp());
  assert.deepEqual([err?.condition, err?.text], ["item-not-found", `deploybot@${DOMAIN} was removed before the message could be delivered.`]);
});

test("a job without its record does nothing; a stop during a wait interrupts it and leaves it queued", async () => {
  const t = await setup([{ kind: "retry", reason: "connection refused", retryAfterMs: 30_000 }], { realSleep: true });
  await t.outbound.process({ ...t.job, id: "01JNORECORD000000000000000" });
  assert.equal(t.sender.posts.length, 0);
  const stop = new AbortController();
  const running = t.outbound.process(t.job, { signal: stop.signal });
  setTimeout(() => stop.abort(), 30);
  await assert.rejects(running, SendInterrupted);
  assert.equal((await t.messages.get(t.job.id))?.status, "pending");
});
