// REDIS_MIN_REPLICAS as the core sees it (the Durability port, core/ports.ts): the flows that acknowledge
// — an inbound SMS, the message-in API, a user's message — mark before their writes and confirm right
// before acknowledging; when the mark is refused nothing is written; a refused confirmation is no
// acknowledgement. On the in-memory adapters, with a Durability that records what it is asked.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMemoryDelivery } from "../../src/adapters/memory/delivery.js";
import { createMemoryLinkStore } from "../../src/adapters/memory/link-store.js";
import { createMemoryMessageStore } from "../../src/adapters/memory/message-store.js";
import { createScriptedSmsProvider } from "../../src/adapters/memory/sms-provider.js";
import { createScriptedWebhookSender } from "../../src/adapters/memory/webhook-sender.js";
import { createMemoryWebhookStore } from "../../src/adapters/memory/webhook-store.js";
import { createInbound, type InboundSms } from "../../src/core/flows/sms-in.js";
import { createWebhookIn } from "../../src/core/flows/webhook-in.js";
import { createOutbound, type ChatFromUser } from "../../src/core/flows/xmpp-out.js";
import type { Durability } from "../../src/core/ports.js";

const DOMAIN = "sms.example.com";
const ALICE = "alice@example.com";
const OURS = "+15550001111";
const THEM = "+15552223333";
const quiet = { info() {}, warn() {}, error() {} };

class Unconfirmed extends Error {}

/** A Durability that records each call, with how many items were queued at the time. */
function recording(o: { behind?: boolean; confirmFails?: boolean } = {}) {
  const calls: string[] = [];
  let queued = () => 0;
  let marks = 0;
  const durability: Durability = {
    mark() {
      calls.push(`mark@${queued()}`);
      if (o.behind) throw new Unconfirmed("replicas behind");
      return { at: ++marks };
    },
    async confirm(mark) {
      calls.push(`confirm${mark.at}@${queued()}`);
      if (o.confirmFails) throw new Unconfirmed("not confirmed");
    },
  };
  return { durability, calls, counting: (f: () => number) => void (queued = f) };
}

function stores() {
  const links = createMemoryLinkStore({ [ALICE]: OURS });
  const messages = createMemoryMessageStore();
  const delivery = createMemoryDelivery({ messages });
  return { links, messages, delivery, queued: () => delivery.toXmpp().length + delivery.outbound().length };
}

const sms = (extra: Partial<InboundSms> = {}): InboundSms => ({ providerId: "SM0001", from: THEM, to: OURS, body: "hello", media: [], ...extra });

test("an inbound SMS: marked before anything is queued, confirmed after, its repeat and an unrouted one confirmed too", async () => {
  const s = stores();
  const r = recording();
  r.counting(s.queued);
  const inbound = createInbound({ domain: DOMAIN, links: s.links, messages: s.messages, delivery: s.delivery, log: quiet, durability: r.durability });
  assert.equal((await inbound.accept(sms())).outcome, "queued");
  assert.equal((await inbound.accept(sms())).outcome, "duplicate");
  assert.equal((await inbound.accept(sms({ providerId: "SM0002", to: "+15550009999" }))).outcome, "unrouted");
  assert.deepEqual(r.calls, ["mark@0", "confirm1@1", "mark@1", "confirm2@1", "mark@1", "confirm3@1"]);
});

test("an inbound SMS while the replicas are behind: nothing is stored, the error reaches the spool (which journals it)", async () => {
  const s = stores();
  const r = recording({ behind: true });
  const inbound = createInbound({ domain: DOMAIN, links: s.links, messages: s.messages, delivery: s.delivery, log: quiet, durability: r.durability });
  await assert.rejects(inbound.accept(sms()), Unconfirmed);
  assert.equal(s.queued(), 0);
});

test("an inbound SMS whose writes are not confirmed is not acknowledged, though it was stored (a replay is a duplicate)", async () => {
  const s = stores();
  const r = recording({ confirmFails: true });
  const inbound = createInbound({ domain: DOMAIN, links: s.links, messages: s.messages, delivery: s.delivery, log: quiet, durability: r.durability });
  await assert.rejects(inbound.accept(sms()), Unconfirmed);
  assert.equal(s.queued(), 1);
});

test("the message-in API: a message and its repeat (same Idempotency-Key) are confirmed after the write; behind, nothing is queued", async () => {
  const s = stores();
  const webhooks = createMemoryWebhookStore();
  await webhooks.put("deploybot", { url: "https://bot.example/in", allow: [ALICE] });
  const r = recording();
  r.counting(s.queued);
  const flow = createWebhookIn({ domain: DOMAIN, webhooks, delivery: s.delivery, maxBacklog: 100, durability: r.durability });
  const msg = { name: "deploybot", to: ALICE, text: "build 42 passed", media: [], idempotencyKey: "k1" };
  const first = await flow.accept(msg);
  const again = await flow.accept(msg);
  assert.deepEqual([first.outcome, again.outcome, again.id], ["queued", "repeat", first.id]);
  assert.deepEqual(r.calls, ["mark@0", "confirm1@1", "mark@1", "confirm2@1"]);

  const behind = recording({ behind: true });
  const refusing = createWebhookIn({ domain: DOMAIN, webhooks, delivery: s.delivery, maxBacklog: 100, durability: behind.durability });
  await assert.rejects(refusing.accept({ ...msg, idempotencyKey: "k2" }), Unconfirmed);
  assert.equal(s.queued(), 1);
});

function outbound(durability: Durability) {
  const s = stores();
  const webhooks = createMemoryWebhookStore();
  const flow = createOutbound({
    links: s.links,
    messages: s.messages,
    delivery: s.delivery,
    provider: createScriptedSmsProvider(),
    log: quiet,
    retry: { baseMs: 10, deadlineMs: 60_000 },
    applyStatus: async () => undefined,
    webhooks: { store: webhooks, sender: createScriptedWebhookSender(), deadlineMs: 60_000 },
    domain: DOMAIN,
    durability,
  });
  return { ...s, flow };
}

const chat = (extra: Partial<ChatFromUser> = {}): ChatFromUser => ({
  from: `${ALICE}/phone`,
  fromBare: ALICE,
  toLocal: THEM,
  to: `${THEM}@${DOMAIN}`,
  stanzaId: "s1",
  type: "chat",
  body: "hi there",
  oobUrls: [],
  encrypted: false,
  receiptRequested: false,
  ...extra,
});

test("a user's message: confirmed once queued, and its repeat (same stanza id) too; a chat state or a refusal asks nothing", async () => {
  const r = recording();
  const o = outbound(r.durability);
  r.counting(o.queued);
  assert.equal((await o.flow.accept(chat())).outcome, "queued");
  assert.equal((await o.flow.accept(chat())).outcome, "repeat");
  assert.equal((await o.flow.accept(chat({ stanzaId: "s2", body: undefined }))).outcome, "ignored");
  await assert.rejects(o.flow.accept(chat({ stanzaId: "s3", from: "bob@example.com/x", fromBare: "bob@example.com" })));
  assert.deepEqual(r.calls, ["mark@0", "confirm1@1", "mark@1", "confirm2@1", "mark@1"], "the unlinked sender was marked but never confirmed");
});

test("a user's message while the replicas are behind: refused before anything is queued", async () => {
  const r = recording({ behind: true });
  const o = outbound(r.durability);
  await assert.rejects(o.flow.accept(chat()), Unconfirmed);
  assert.equal(o.queued(), 0);
});
