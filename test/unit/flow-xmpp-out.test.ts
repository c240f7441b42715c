// XMPP → SMS and XMPP → webhook, the accepting side (core/flows/xmpp-out.ts accept) on the in-memory
// adapters: every check a user's message passes or fails, in order, and what is recorded and queued.
// No Redis, no XMPP server, no provider call.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMemoryIntroductionStore } from "../../src/adapters/memory/introduction-store.js";
import { createMemoryLinkStore } from "../../src/adapters/memory/link-store.js";
import { createMemoryMessageStore } from "../../src/adapters/memory/message-store.js";
import { createMemoryOptOutStore } from "../../src/adapters/memory/opt-out-store.js";
import { createMemoryDelivery } from "../../src/adapters/memory/delivery.js";
import { createScriptedSmsProvider } from "../../src/adapters/memory/sms-provider.js";
import { createMemoryUsageCounter } from "../../src/adapters/memory/usage-counter.js";
import { createScriptedWebhookSender } from "../../src/adapters/memory/webhook-sender.js";
import { createMemoryWebhookStore } from "../../src/adapters/memory/webhook-store.js";
import { createAccessPolicy } from "../../src/core/policy/access.js";
import { CORRECTION_PREFIX } from "../../src/core/model/chat-extensions.js";
import { createContactEvents } from "../../src/core/flows/contact-events.js";
import { createSendLimits, type LimitName, type LimitSettings } from "../../src/core/policy/limits.js";
import { userStanzaKey, type OutboundJob } from "../../src/core/model/message.js";
import { createOnNet } from "../../src/core/flows/on-net.js";
import { optedOutRefusal } from "../../src/core/policy/opt-out.js";
import { createOutbound, MAX_BODY_CHARS, type ChatFromUser } from "../../src/core/flows/xmpp-out.js";
import { GatewayError } from "../../src/errors.js";

const DOMAIN = "sms.example.com";
const ALICE = "alice@example.com";
const BOB = "bob@example.com";
const OURS = "+15550001111";
const THEM = "+15552223333";
const MAIN = `AC${"0".repeat(32)}`;
const OWN = `AC${"9".repeat(32)}`;
const quiet = { info() {}, warn() {}, error() {} };

interface Options {
  limits?: { perMinute?: number; segmentsPerDay?: number; breakerPerHour?: number; settings?: Partial<LimitSettings> };
  maxSegments?: number;
  onNet?: boolean;
  byo?: boolean;
}

async function setup(o: Options = {}) {
  const links = createMemoryLinkStore({ [ALICE]: OURS });
  const messages = createMemoryMessageStore();
  const delivery = createMemoryDelivery({ messages });
  const optOuts = createMemoryOptOutStore();
  const webhooks = createMemoryWebhookStore();
  await webhooks.put("deploybot", { url: "https://bot.example/in", allow: [ALICE] });
  const provider = createScriptedSmsProvider();
  const refused: LimitName[] = [];
  const counter = (limit: number, windowS: number, staysTripped = false) => createMemoryUsageCounter({ limit, windowS, staysTripped });
  const limits = createSendLimits({
    settings: { allowedCountries: ["US", "CA"], blockedNumberTypes: ["PREMIUM_RATE"], shortCodes: "deny", defaultRegion: "US", ...o.limits?.settings },
    userRate: counter(o.limits?.perMinute ?? 0, 60),
    userDaily: counter(o.limits?.segmentsPerDay ?? 0, 86_400),
    breaker: counter(o.limits?.breakerPerHour ?? 0, 3600, true),
    events: { refused: (l) => void refused.push(l), breakerTripped: () => undefined },
  });
  const contacts = createContactEvents({ domain: DOMAIN, delivery, optOuts, introductions: createMemoryIntroductionStore(), log: quiet });
  const outbound = createOutbound({
    access: createAccessPolicy(["example.com"]),
    limits,
    links,
    messages,
    delivery,
    provider,
    log: quiet,
    retry: { baseMs: 10, deadlineMs: 60_000 },
    applyStatus: async () => undefined,
    webhooks: { store: webhooks, sender: createScriptedWebhookSender(), deadlineMs: 60_000 },
    domain: DOMAIN,
    optOuts,
    maxSegments: o.maxSegments ?? 10,
    mainAccount: MAIN,
    notLinkedHint: "ask its operator to link one.",
    ...(o.byo ? { accountOf: async (jid: string) => (jid === ALICE ? OWN : undefined) } : {}),
    ...(o.onNet ? { onNet: createOnNet({ domain: DOMAIN, delivery, contacts, log: quiet }) } : {}),
  });
  return { outbound, links, messages, delivery, optOuts, webhooks, provider, refused };
}

let stanzas = 0;
const chat = (extra: Partial<ChatFromUser> = {}): ChatFromUser => {
  const toLocal = extra.toLocal ?? THEM;
  return {
    from: `${ALICE}/phone`,
    fromBare: ALICE,
    toLocal,
    to: `${toLocal}@${DOMAIN}`,
    stanzaId: `s${++stanzas}`,
    type: "chat",
    body: "hi there",
    oobUrls: [],
    encrypted: false,
    receiptRequested: true,
    ...extra,
  };
};
const refusedWith = (code: string, text?: RegExp | string) => (e: unknown) =>
  e instanceof GatewayError && e.code === code && (text === undefined || (typeof text === "string" ? e.userText === text : text.test(e.userText)));

/** A message refused before anything was stored or queued. */
async function refuses(t: Awaited<ReturnType<typeof setup>>, msg: ChatFromUser, code: string, text?: RegExp | string) {
  await assert.rejects(t.outbound.accept(msg), refusedWith(code, text));
  assert.deepEqual(t.delivery.outbound(), [], "nothing queued toward the provider");
  assert.deepEqual(t.delivery.toXmpp(), [], "nothing queued toward XMPP");
  assert.equal(t.provider.calls.send, 0);
}

test("a text: recorded (pending, the account it goes out with) and queued from the user's number, once", async () => {
  const t = await setup();
  const msg = chat();
  const res = await t.outbound.accept(msg);
  assert.equal(res.outcome, "queued");
  const id = (res as { id: string }).id;
  assert.deepEqual(t.delivery.outbound(), [{ id, from: OURS, to: THEM, body: "hi there", mediaUrls: [] }]);
  const record = await t.messages.get(id);
  assert.deepEqual(
    { ...record, createdAt: 0, updatedAt: 0 },
    {
      id,
      direction: "out",
      channel: "sms",
      jid: `${ALICE}/phone`,
      stanzaId: msg.stanzaId,
      contactJid: `${THEM}@${DOMAIN}`,
      account: MAIN,
      receiptRequested: true,
      status: "pending",
      createdAt: 0,
      updatedAt: 0,
    },
  );
  assert.equal(await t.delivery.idForDedupeKey(userStanzaKey(ALICE, msg.stanzaId!)), id);
});

test("REGISTRATION=byo: the user's own account travels with the job and is the record's", async () => {
  const t = await setup({ byo: true });
  const res = await t.outbound.accept(chat());
  const [job] = t.delivery.outbound() as (OutboundJob & { account?: string })[];
  assert.equal(job?.account, OWN);
  assert.equal((await t.messages.get((res as { id: string }).id))?.account, OWN);
});

test("the same stanza id resent: answered by the first message, nothing sent again, no limit charged", async () => {
  const t = await setup({ limits: { perMinute: 1 } });
  const msg = chat();
  const first = await t.outbound.accept(msg);
  assert.deepEqual(await t.outbound.accept({ ...msg, body: "edited?" }), { outcome: "repeat", id: (first as { id: string }).id });
  assert.equal(t.delivery.outbound().length, 1);
  assert.deepEqual(t.refused, [], "the repeat was answered before the rate");
  const noId = chat({ stanzaId: undefined });
  await assert.rejects(t.outbound.accept(noId), refusedWith("rate_limited"), "without an id it is a new message");
});

test("a user of another server: forbidden, saying which domains are served", async () => {
  const t = await setup();
  await refuses(t, chat({ from: "mallory@evil.example/x", fromBare: "mallory@evil.example" }), "forbidden", /serves users of example\.com only; evil\.example is not one of them/);
});

test("group chats and encrypted messages are refused, to a bot with its own reason", async () => {
  const t = await setup();
  await refuses(t, chat({ type: "groupchat" }), "not_acceptable", /Group chats are not supported/);
  await refuses(t, chat({ encrypted: true }), "not_acceptable", /^SMS cannot carry encrypted messages/);
  await refuses(t, chat({ toLocal: "deploybot", encrypted: true }), "not_acceptable", /is a service outside XMPP and cannot read encrypted messages/);
});

test("addresses: a malformed number, an unknown form and a named sender cannot be texted", async () => {
  const t = await setup();
  await refuses(t, chat({ toLocal: "+1555" }), "jid_malformed", /not a phone number in international format/);
  await refuses(t, chat({ toLocal: "Hello There" }), "jid_malformed", /not an address this gateway knows/);
  await refuses(t, chat({ toLocal: "~acmebank" }), "not_allowed", /'acmebank' is a named sender that cannot receive texts/);
});

test("a user without a number is told how to get one", async () => {
  const t = await setup();
  await t.links.unlink(ALICE);
  await refuses(t, chat(), "registration_required", /not linked to a phone number on this gateway; ask its operator to link one\./);
});

test("a recipient who replied STOP: refused up front, saying how they can opt back in", async () => {
  const t = await setup();
  await t.optOuts.optOut(OURS, THEM, "keyword");
  await refuses(t, chat(), "forbidden", optedOutRefusal(THEM, OURS));
  await t.optOuts.optIn(OURS, THEM);
  assert.equal((await t.outbound.accept(chat())).outcome, "queued");
});

test("length: more than 1600 characters, or more segments than MAX_SEGMENTS, is refused saying why", async () => {
  const t = await setup({ maxSegments: 2 });
  await refuses(t, chat({ body: "x".repeat(MAX_BODY_CHARS + 1) }), "not_acceptable", /1601 characters long; SMS allows at most 1600/);
  await refuses(t, chat({ body: "x".repeat(400) }), "not_acceptable", /3 SMS segments in GSM-7; this gateway sends at most 2/);
  assert.equal((await t.outbound.accept(chat({ body: "x".repeat(306) }))).outcome, "queued", "exactly two segments");
  assert.equal((await t.outbound.accept(chat({ body: "x".repeat(400), oobUrls: ["https://up.example/a.jpg"] }))).outcome, "queued", "an MMS is not counted in segments");
});

test("limits: the per-user rate, the daily segments and the breaker refuse with a time to wait", async () => {
  const rate = await setup({ limits: { perMinute: 1 } });
  await rate.outbound.accept(chat());
  await assert.rejects(rate.outbound.accept(chat()), (e: unknown) => e instanceof GatewayError && e.code === "rate_limited" && e.retryAfterMs! > 0 && /at most 1 messages a minute/.test(e.userText));
  assert.deepEqual(rate.refused, ["user_rate"]);
  const daily = await setup({ limits: { segmentsPerDay: 2 } });
  await daily.outbound.accept(chat({ body: "x".repeat(200) }));
  await assert.rejects(daily.outbound.accept(chat()), refusedWith("rate_limited", /daily allowance of 2 SMS segments/));
  assert.equal(daily.delivery.outbound().length, 1);
  const breaker = await setup({ limits: { breakerPerHour: 1 } });
  await breaker.outbound.accept(chat());
  await assert.rejects(breaker.outbound.accept(chat()), refusedWith("resource_constraint", /stopped sending texts for now/));
  await assert.rejects(breaker.outbound.accept(chat()), refusedWith("resource_constraint"), "stays tripped");
  assert.deepEqual(breaker.refused, ["breaker", "breaker"]);
});

test("destinations: a country outside ALLOWED_COUNTRIES, a short code (denied or not listed), a blocked number type", async () => {
  const t = await setup();
  await refuses(t, chat({ toLocal: "+442079460000" }), "policy_violation", /is in United Kingdom; this gateway sends texts to numbers in United States, Canada only/);
  await refuses(t, chat({ toLocal: "12345" }), "policy_violation", /is a short code; this gateway does not text short codes/);
  await refuses(t, chat({ toLocal: "+19005550123" }), "policy_violation", /a premium-rate number/);
  assert.deepEqual(t.refused, ["destination_country", "short_code", "destination_type"]);
  const listed = await setup({ limits: { settings: { shortCodes: ["12345"] } } });
  await refuses(listed, chat({ toLocal: "54321" }), "policy_violation", /only the short codes its operator listed/);
  assert.equal((await listed.outbound.accept(chat({ toLocal: "12345" }))).outcome, "queued");
});

test("a webhook target: its allow list decides; an unknown name is not found; allowed ones are queued for it", async () => {
  const t = await setup();
  await refuses(t, chat({ toLocal: "pager" }), "not_found", /no contact 'pager'/);
  await t.webhooks.put("deploybot", { url: "https://bot.example/in", allow: [BOB] });
  await refuses(t, chat({ toLocal: "deploybot" }), "forbidden", /not allowed to message deploybot@sms\.example\.com/);
  await t.webhooks.put("deploybot", { url: "https://bot.example/in", allow: ["*@example.com"] });
  const res = await t.outbound.accept(chat({ toLocal: "deploybot", body: "deploy\nhttps://up.example/log.txt", oobUrls: ["https://up.example/log.txt"] }));
  const id = (res as { id: string }).id;
  const [job] = t.delivery.outbound();
  assert.deepEqual({ ...job, acceptedAt: 0 }, { channel: "webhook", id, from: ALICE, to: "deploybot", body: "deploy", mediaUrls: ["https://up.example/log.txt"], acceptedAt: 0 });
  assert.equal((await t.messages.get(id))?.channel, "webhook");
  assert.equal((await t.messages.get(id))?.account, undefined, "no provider account for a webhook");
});

test("on-net: both numbers are the gateway's: delivered over XMPP (introduction, text, receipt), no SMS, no destination limits", async () => {
  const t = await setup({ onNet: true, limits: { settings: { allowedCountries: ["GB"] } } });
  await t.links.link(BOB, THEM);
  const msg = chat();
  const res = await t.outbound.accept(msg);
  assert.equal(res.outcome, "queued");
  assert.deepEqual(t.delivery.outbound(), []);
  const items = t.delivery.toXmpp();
  assert.deepEqual(
    items.map((i) => `${i.kind} ${i.from} → ${i.to}`),
    [`subscribe ${OURS}@${DOMAIN} → ${BOB}`, `chat ${OURS}@${DOMAIN} → ${BOB}`, `receipt ${THEM}@${DOMAIN} → ${ALICE}/phone`],
  );
  assert.equal(items[2]?.kind === "receipt" && items[2].receiptFor, msg.stanzaId);
});

test("nothing to send: chat states, a removed reaction, a retraction (with a note why)", async () => {
  const t = await setup();
  assert.deepEqual(await t.outbound.accept(chat({ body: undefined })), { outcome: "ignored", reason: "no body" });
  assert.deepEqual(await t.outbound.accept(chat({ reactions: [] })), { outcome: "ignored", reason: "reaction" });
  assert.deepEqual(await t.outbound.accept(chat({ toLocal: "deploybot", reactions: ["👍"] })), { outcome: "ignored", reason: "reaction" }, "a bot gets no reactions");
  const retraction = await t.outbound.accept(chat({ retracts: "s0" }));
  assert.ok(retraction.outcome === "ignored" && /Texts cannot be unsent: if your earlier message reached \+1 555 222 3333/.test(retraction.notice ?? ""));
  assert.deepEqual(t.delivery.outbound(), []);
});

test("a reaction becomes a short text, a correction a marked new text, an uploaded file's URL media", async () => {
  const t = await setup();
  await t.outbound.accept(chat({ reactions: ["👍", "👍", "🎉"] }));
  await t.outbound.accept(chat({ body: "fixed typo", replaces: "s0" }));
  await t.outbound.accept(chat({ body: "https://up.example/p.jpg", oobUrls: ["https://up.example/p.jpg"] }));
  assert.deepEqual(
    t.delivery.outbound().map((j) => [j.body, j.mediaUrls]),
    [
      ["Reacted 👍 🎉", []],
      [`${CORRECTION_PREFIX}fixed typo`, []],
      ["", ["https://up.example/p.jpg"]],
    ],
  );
});
