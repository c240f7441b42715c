// SMS → XMPP and provider status → receipts (core/flows/sms-in.ts) on the in-memory adapters: routing, the
// repeat check and its namespaced keys, introductions, opt-out keywords, media carrying their signer;
// then status callbacks: the signing account, the provider id, a callback held until the create's
// answer, forward-only statuses, one receipt and one error per message. No Redis, no XMPP server.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMemoryIntroductionStore } from "../../src/adapters/memory/introduction-store.js";
import { createMemoryLinkStore } from "../../src/adapters/memory/link-store.js";
import { createMemoryMessageStore } from "../../src/adapters/memory/message-store.js";
import { createMemoryOptOutStore } from "../../src/adapters/memory/opt-out-store.js";
import { createMemoryDelivery } from "../../src/adapters/memory/delivery.js";
import { createInbound, type InboundSms } from "../../src/core/flows/sms-in.js";
import { inboundSmsKey, legacyInboundSmsKey, newOutgoingRecord, type XmppDelivery } from "../../src/core/model/message.js";
import { consentNote } from "../../src/core/policy/opt-out.js";

const DOMAIN = "sms.example.com";
const ALICE = "alice@example.com";
const OURS = "+15550001111";
const THEM = "+15552223333";
const AC1 = `AC${"1".repeat(32)}`;
const AC2 = `AC${"2".repeat(32)}`;
const quiet = { info() {}, warn() {} };

function setup() {
  const links = createMemoryLinkStore({ [ALICE]: OURS });
  const messages = createMemoryMessageStore();
  const delivery = createMemoryDelivery({ messages });
  const optOuts = createMemoryOptOutStore();
  const introductions = createMemoryIntroductionStore();
  const inbound = createInbound({ domain: DOMAIN, links, messages, delivery, log: quiet, optOuts, introductions });
  const kinds = () => delivery.toXmpp().map((i) => (i.kind === "chat" ? `chat:${i.body}` : i.kind));
  return { links, messages, delivery, optOuts, introductions, inbound, kinds };
}

const sms = (extra: Partial<InboundSms> = {}): InboundSms => ({ providerId: "SM0001", account: AC1, from: THEM, to: OURS, body: "hello", media: [], ...extra });
const chats = (items: XmppDelivery[]) => items.filter((i): i is Extract<XmppDelivery, { kind: "chat" }> => i.kind === "chat");

test("routed: the contact introduces itself once, then its text goes to the linked user, from its number's JID", async () => {
  const t = setup();
  const before = Date.now();
  assert.deepEqual(await t.inbound.accept(sms()), { outcome: "queued", id: "SM0001", jid: ALICE });
  const [sub, chat] = t.delivery.toXmpp();
  assert.deepEqual(sub, { kind: "subscribe", id: "sub-SM0001", from: `${THEM}@${DOMAIN}`, to: ALICE, nick: "+1 555 222 3333" });
  assert.ok(chat?.kind === "chat");
  assert.deepEqual({ ...chat, acceptedAt: 0 }, { kind: "chat", id: "SM0001", from: `${THEM}@${DOMAIN}`, to: ALICE, body: "hello", mediaUrls: [], acceptedAt: 0 });
  assert.ok(chat.acceptedAt >= before);
  await t.inbound.accept(sms({ providerId: "SM0002", body: "again" }));
  assert.deepEqual(t.kinds(), ["subscribe", "chat:hello", "chat:again"], "introduced once");
});

test("a number's text in national format reaches the user linked to its E.164 form; a journal replay keeps the arrival time", async () => {
  const t = setup();
  const res = await t.inbound.accept(sms({ to: "+1 (555) 000-1111", receivedAt: 1234 }));
  assert.equal(res.outcome, "queued");
  assert.equal(chats(t.delivery.toXmpp())[0]?.acceptedAt, 1234);
});

test("unrouted: nobody has the number; nothing queued, but a STOP still goes on the ledger", async () => {
  const t = setup();
  await t.links.unlink(ALICE);
  assert.deepEqual(await t.inbound.accept(sms({ body: "STOP" })), { outcome: "unrouted", id: "SM0001" });
  assert.deepEqual(t.delivery.toXmpp(), []);
  assert.equal(await t.optOuts.isOptedOut(OURS, THEM), true);
});

test("a repeated webhook (same signer, same provider id) is a duplicate: nothing queued again, no second note", async () => {
  const t = setup();
  await t.inbound.accept(sms({ body: "STOP" }));
  const n = t.delivery.toXmpp().length;
  assert.deepEqual(await t.inbound.accept(sms({ body: "STOP" })), { outcome: "duplicate", id: "SM0001", jid: ALICE });
  assert.equal(t.delivery.toXmpp().length, n);
  assert.equal(await t.delivery.idForDedupeKey(inboundSmsKey(AC1, "SM0001")), "SM0001");
});

test("repeat keys are namespaced by signer: another account or the sandbox naming the same id is another text; a key from before namespaces still counts", async () => {
  const t = setup();
  await t.inbound.accept(sms());
  assert.equal((await t.inbound.accept(sms({ account: AC2 }))).outcome, "queued", "another account's webhook");
  assert.equal((await t.inbound.accept(sms({ account: undefined }))).outcome, "queued", "the sandbox");
  assert.equal(await t.delivery.idForDedupeKey(inboundSmsKey(undefined, "SM0001")), "SM0001");
  // A text taken before keys had a namespace left its marker under the bare id.
  await t.delivery.queues.add("to-xmpp", 0, "{}", { key: legacyInboundSmsKey("SMold"), itemId: "SMold", ttlS: 60 });
  assert.equal((await t.inbound.accept(sms({ providerId: "SMold" }))).outcome, "duplicate");
});

test("opt-out keywords: STOP and START change the ledger and the user gets a note after the keyword text; HELP and repeats change nothing", async () => {
  const t = setup();
  await t.inbound.accept(sms({ providerId: "SM1", body: " stop " }));
  assert.deepEqual(t.optOuts.entries.get(`${OURS} ${THEM}`)?.source, "keyword");
  await t.inbound.accept(sms({ providerId: "SM2", body: "STOP" }));
  await t.inbound.accept(sms({ providerId: "SM3", body: "HELP" }));
  await t.inbound.accept(sms({ providerId: "SM4", body: "Start" }));
  assert.equal(await t.optOuts.isOptedOut(OURS, THEM), false);
  assert.deepEqual(t.kinds(), ["subscribe", "chat: stop ", `chat:${consentNote("opt-out", THEM, OURS)}`, "chat:STOP", "chat:HELP", "chat:Start", `chat:${consentNote("opt-in", THEM, OURS)}`]);
  const note = chats(t.delivery.toXmpp())[1]!;
  assert.deepEqual([note.id, note.from, note.to], ["SM1-opt-out", `${THEM}@${DOMAIN}`, ALICE]);
});

test("Twilio's OptOutType wins over the words; an alphanumeric sender has nothing to consent to", async () => {
  const t = setup();
  await t.inbound.accept(sms({ providerId: "SM1", body: "Arrêtez", optOutType: "STOP" }));
  assert.equal(t.optOuts.entries.get(`${OURS} ${THEM}`)?.source, "optout-type");
  await t.inbound.accept(sms({ providerId: "SM2", from: "ACME Bank", body: "STOP" }));
  assert.equal(t.optOuts.entries.size, 1);
  assert.deepEqual(
    t.delivery.toXmpp().find((i) => i.kind === "subscribe" && i.from.startsWith("~")),
    { kind: "subscribe", id: "sub-SM2", from: `~acmebank@${DOMAIN}`, to: ALICE, nick: "ACME Bank" },
  );
});

test("media are left for delivery to re-host, each carrying the account that signed the webhook (none from the sandbox)", async () => {
  const t = setup();
  await t.inbound.accept(sms({ media: [{ url: "https://api.twilio.com/m/1", contentType: "image/jpeg" }, { url: "https://api.twilio.com/m/2" }] }));
  await t.inbound.accept(sms({ providerId: "SM9", account: undefined, media: [{ url: "https://sandbox/m/3" }] }));
  const [signed, sandbox] = chats(t.delivery.toXmpp());
  assert.deepEqual(signed?.media, [
    { url: "https://api.twilio.com/m/1", contentType: "image/jpeg", account: AC1 },
    { url: "https://api.twilio.com/m/2", account: AC1 },
  ]);
  assert.deepEqual(signed?.mediaUrls, [], "the gateway's URLs come when they are re-hosted");
  assert.deepEqual(sandbox?.media, [{ url: "https://sandbox/m/3" }]);
  await t.inbound.accept(sms({ providerId: "SM10" }));
  assert.equal(chats(t.delivery.toXmpp())[2]?.media, undefined, "no media, no field");
});

// Status callbacks.

async function sent(t: ReturnType<typeof setup>, o: { providerId?: string; stanzaId?: string; receipt?: boolean; account?: string } = {}) {
  const record = newOutgoingRecord({
    id: "01JSENT0000000000000000000",
    channel: "sms",
    jid: `${ALICE}/phone`,
    stanzaId: o.stanzaId ?? "s1",
    contactJid: `${THEM}@${DOMAIN}`,
    receiptRequested: o.receipt ?? true,
    account: o.account ?? AC1,
    now: 0,
  });
  if (o.stanzaId === "") delete record.stanzaId;
  await t.messages.create(record);
  if (o.providerId !== "") await t.messages.advance(record.id, "queued", { providerId: o.providerId ?? "SMout" });
  return record;
}

test("a callback counts only when signed by the account that sent the message and naming its provider id", async () => {
  const t = setup();
  const r = await sent(t);
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMout", signer: AC2, status: "delivered" }), "unknown");
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMout", status: "delivered" }), "unknown", "unsigned");
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMother", signer: AC1, status: "delivered" }), "unknown");
  assert.equal(await t.inbound.applyCallback({ id: "01JNOSUCH0000000000000000", providerId: "SMout", signer: AC1, status: "delivered" }), "unknown");
  assert.equal((await t.messages.get(r.id))?.status, "queued");
  assert.deepEqual(t.delivery.toXmpp(), []);
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMout", signer: AC1, status: "delivered" }), "applied");
  assert.deepEqual(t.delivery.toXmpp(), [{ kind: "receipt", id: r.id, from: `${THEM}@${DOMAIN}`, to: `${ALICE}/phone`, receiptFor: "s1" }]);
});

test("statuses move forward only: a late or repeated callback is stale and sends nothing; one receipt per message", async () => {
  const t = setup();
  const r = await sent(t);
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMout", signer: AC1, status: "sent" }), "applied");
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMout", signer: AC1, status: "queued" }), "stale");
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMout", signer: AC1, status: "delivered" }), "applied");
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMout", signer: AC1, status: "delivered" }), "stale");
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMout", signer: AC1, status: "undelivered", errorCode: 30003 }), "stale", "final");
  assert.deepEqual(
    t.delivery.toXmpp().map((i) => i.kind),
    ["receipt"],
  );
});

test("a callback before the create's answer is held; the answer naming the same id applies it (with its receipt), another id's is dropped", async () => {
  const t = setup();
  const r = await sent(t, { providerId: "" });
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMearly", signer: AC1, status: "delivered" }), "held");
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMforged", signer: AC1, status: "failed", errorCode: 30007 }), "held");
  assert.deepEqual(t.delivery.toXmpp(), []);
  assert.equal(await t.inbound.applyStatus({ id: r.id, providerId: "SMearly", status: "queued" }), "applied");
  assert.equal((await t.messages.get(r.id))?.status, "delivered");
  assert.deepEqual(
    t.delivery.toXmpp().map((i) => i.kind),
    ["receipt"],
  );
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMforged", signer: AC1, status: "failed" }), "unknown");
});

test("a failure: one error reply to the original stanza, with the provider's reason; never a second", async () => {
  const t = setup();
  const r = await sent(t);
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMout", signer: AC1, status: "undelivered", errorCode: 30003 }), "applied");
  const [err] = t.delivery.toXmpp();
  assert.ok(err?.kind === "error");
  assert.deepEqual([err.replyTo, err.to, err.from, err.condition, err.type], ["s1", `${ALICE}/phone`, `${THEM}@${DOMAIN}`, "recipient-unavailable", "wait"]);
  assert.match(err.text, /unreachable/);
  assert.equal(await t.inbound.applyStatus({ id: r.id, status: "failed" }), "stale");
  assert.equal(t.delivery.toXmpp().length, 1);
});

test("a failure without a code says the provider gave no reason; no stanza id or no receipt asked: nothing to send", async () => {
  const a = setup();
  const r = await sent(a);
  await a.inbound.applyStatus({ id: r.id, status: "failed" });
  const [err] = a.delivery.toXmpp();
  assert.ok(err?.kind === "error" && err.condition === "undefined-condition" && /the provider gave no reason/.test(err.text));
  const b = setup();
  const noId = await sent(b, { stanzaId: "" });
  await b.inbound.applyCallback({ id: noId.id, providerId: "SMout", signer: AC1, status: "failed" });
  const c = setup();
  const noReceipt = await sent(c, { receipt: false });
  await c.inbound.applyCallback({ id: noReceipt.id, providerId: "SMout", signer: AC1, status: "delivered" });
  assert.deepEqual([...b.delivery.toXmpp(), ...c.delivery.toXmpp()], []);
  assert.equal(await c.inbound.applyStatus({ id: "01JNOSUCH0000000000000000", status: "sent" }), "unknown");
});

test("one error per message across paths: after the sender was told it may not have gone out, a late failure changes the status but sends no second error", async () => {
  const t = setup();
  const r = await sent(t);
  // What the send path does when it cannot tell (core/flows/sms-send.ts, via outbound.reportError).
  await t.messages.advance(r.id, "unknown");
  assert.equal(await t.messages.markOnce(r.id, "error"), true);
  assert.equal(await t.inbound.applyCallback({ id: r.id, providerId: "SMout", signer: AC1, status: "failed", errorCode: 30005 }), "applied");
  assert.equal((await t.messages.get(r.id))?.status, "failed");
  assert.deepEqual(t.delivery.toXmpp(), []);
});
