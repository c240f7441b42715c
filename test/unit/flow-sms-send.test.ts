// Sending one queued text (core/flows/sms-send.ts) on the in-memory adapters: what a redelivered job does
// after a crash (inflight vs clear), Retry-After, the deadline, that an ambiguous outcome is never
// resent blindly, and every delivery outcome the sender hears of. No Redis, no provider.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMemoryLinkStore } from "../../src/adapters/memory/link-store.js";
import { createMemoryMessageStore, type MemoryMessageStore } from "../../src/adapters/memory/message-store.js";
import { createMemoryDelivery } from "../../src/adapters/memory/delivery.js";
import { createScriptedSmsProvider, type SendStep } from "../../src/adapters/memory/sms-provider.js";
import { createScriptedWebhookSender } from "../../src/adapters/memory/webhook-sender.js";
import { createMemoryWebhookStore } from "../../src/adapters/memory/webhook-store.js";
import { createRecordingXmppOut } from "../../src/adapters/memory/xmpp-out.js";
import { createInbound } from "../../src/core/flows/sms-in.js";
import { createOutbound } from "../../src/core/flows/xmpp-out.js";
import type { MessageStatus, OutboundJob } from "../../src/core/model/message.js";
import { createSender, SendInterrupted } from "../../src/core/flows/sms-send.js";
import type { AttemptState, ProviderFailure, SmsLookupResult } from "../../src/core/ports.js";
import { waitUntil } from "../support/wait.js";

/** The store with `id` in the attempt state a crash or a stop left: `count` requests started from `firstAt`, the last `state`. */
async function leaveAttempt(messages: MemoryMessageStore, id: string, a: AttemptState, setClock: (ms: number | undefined) => void): Promise<void> {
  setClock(a.firstAt);
  for (let i = 0; i < a.count; i++) {
    if (i > 0) await messages.clearAttempt(id);
    await messages.startSending(id);
  }
  if (a.state === "clear") await messages.clearAttempt(id);
  setClock(undefined);
  assert.deepEqual(messages.attemptOf(id), a);
}

const JOB: OutboundJob = { id: "01JOB", from: "+15550001111", to: "+15552223333", body: "hi", mediaUrls: [] };
const silent = { info() {}, warn() {} };

function setup(sends: SendStep[], lookups: SmsLookupResult[] = [], opts: { attempt?: AttemptState; deadlineMs?: number; onOptedOut?: (from: string, to: string) => Promise<unknown> } = {}) {
  let fixed: number | undefined;
  const messages = createMemoryMessageStore({ now: () => fixed ?? Date.now() });
  const created = messages.create({
    id: JOB.id,
    direction: "out",
    channel: "sms",
    jid: "a@x/r",
    stanzaId: "s1",
    contactJid: "+15552223333@sms",
    receiptRequested: false,
    status: "pending",
    createdAt: Date.now(),
    updatedAt: Date.now(),
  });
  const ready = created.then(() => (opts.attempt ? leaveAttempt(messages, JOB.id, opts.attempt, (ms) => void (fixed = ms)) : undefined));
  const provider = createScriptedSmsProvider(sends, lookups);
  const calls = provider.calls;
  const errors: { type: string; condition: string; text: string }[] = [];
  const applied: { providerId: string; status: MessageStatus }[] = [];
  const sleeps: number[] = [];
  const inner = createSender({
    messages,
    provider,
    log: silent,
    retry: { baseMs: 10, deadlineMs: opts.deadlineMs ?? 60_000 },
    applyStatus: async (u) => {
      applied.push({ providerId: u.providerId, status: u.status });
      await messages.advance(u.id, u.status, { providerId: u.providerId });
    },
    reportError: async (_id, type, condition, text) => void errors.push({ type, condition, text }),
    sleep: async (ms) => void sleeps.push(ms),
    ...(opts.onOptedOut ? { onOptedOut: opts.onOptedOut } : {}),
  });
  const sender = { process: async (job: OutboundJob, meta?: { signal?: AbortSignal }) => (await ready, inner.process(job, meta)) };
  return { sender, messages, calls, errors, applied, sleeps, provider };
}

const busy = (retryAfterMs?: number): ProviderFailure => ({ kind: "retry", code: 20429, httpStatus: 429, message: "Too Many Requests", ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
const noAnswer: ProviderFailure = { kind: "ambiguous", message: "no complete answer from Twilio (UND_ERR_SOCKET: other side closed)" };

test("after a crash mid-request (inflight): looked up first; found → adopted, never resent", async () => {
  const t = setup([], [{ found: { providerId: "SM1", status: "queued" } }], { attempt: { state: "inflight", count: 1, firstAt: Date.now() - 5000 } });
  await t.sender.process(JOB);
  assert.deepEqual(t.calls, { send: 0, lookup: 1 });
  assert.deepEqual(t.applied, [{ providerId: "SM1", status: "queued" }]);
  assert.equal(t.errors.length, 0);
});

test("after a crash mid-request: not found → sent once", async () => {
  const t = setup([{ ok: "SM2" }], [{ notFound: true }], { attempt: { state: "inflight", count: 1, firstAt: Date.now() } });
  await t.sender.process(JOB);
  assert.deepEqual(t.calls, { send: 1, lookup: 1 });
  assert.equal((await t.messages.get(JOB.id))?.providerId, "SM2");
});

test("after a crash mid-request: lookups keep failing → not resent, status unknown, the sender is told", async () => {
  const t = setup([], [{ unknown: "HTTP 500" }, { unknown: "HTTP 500" }, { unknown: "HTTP 500" }], { attempt: { state: "inflight", count: 1, firstAt: Date.now() } });
  await t.sender.process(JOB);
  assert.deepEqual(t.calls, { send: 0, lookup: 3 });
  assert.equal((await t.messages.get(JOB.id))?.status, "unknown");
  assert.equal(t.errors.length, 1);
  assert.match(t.errors[0]!.text, /may or may not have been sent/);
});

test("after a stop during a backoff (clear): resent without a lookup", async () => {
  const t = setup([{ ok: "SM3" }], [], { attempt: { state: "clear", count: 2, firstAt: Date.now() - 1000 } });
  await t.sender.process(JOB);
  assert.deepEqual(t.calls, { send: 1, lookup: 0 });
  assert.equal(t.messages.attemptOf(JOB.id)?.count, 3);
});

test("a job whose record already has a SID is done", async () => {
  const t = setup([]);
  await t.messages.advance(JOB.id, "pending", { providerId: "SMx" });
  await t.sender.process(JOB);
  assert.deepEqual(t.calls, { send: 0, lookup: 0 });
});

test("429 with Retry-After waits at least that long, then sends once", async () => {
  const t = setup([{ fail: busy(1000) }, { ok: "SM4" }]);
  await t.sender.process(JOB);
  assert.equal(t.calls.send, 2);
  assert.equal(t.sleeps.length, 1);
  assert.ok(t.sleeps[0]! >= 1000, `slept ${t.sleeps[0]}`);
  assert.equal(t.messages.attemptOf(JOB.id)?.state, "inflight", "the successful request left its marker; the SID settles it");
});

test("a permanent refusal is tried once and reported", async () => {
  const t = setup([{ fail: { kind: "permanent", code: 21211, httpStatus: 400, message: "bad number" } }]);
  await t.sender.process(JOB);
  assert.equal(t.calls.send, 1);
  assert.equal((await t.messages.get(JOB.id))?.status, "failed");
  assert.equal(t.errors[0]?.condition, "jid-malformed");
});

test("the deadline: a Retry-After past it ends the retries with a resource-constraint reply", async () => {
  const t = setup([{ fail: busy(5000) }], [], { deadlineMs: 2000 });
  await t.sender.process(JOB);
  assert.equal(t.calls.send, 1);
  assert.equal(t.sleeps.length, 0);
  assert.equal((await t.messages.get(JOB.id))?.status, "failed");
  assert.deepEqual([t.errors[0]?.type, t.errors[0]?.condition], ["wait", "resource-constraint"]);
  assert.match(t.errors[0]!.text, /not sent.*gave up after 1 try/);
});

test("an ambiguous create is looked up: found → adopted; not found → resent", async () => {
  const a = setup([{ fail: noAnswer }], [{ found: { providerId: "SM5", status: "queued" } }]);
  await a.sender.process(JOB);
  assert.deepEqual(a.calls, { send: 1, lookup: 1 });
  assert.equal((await a.messages.get(JOB.id))?.providerId, "SM5");

  const b = setup([{ fail: noAnswer }, { ok: "SM6" }], [{ notFound: true }]);
  await b.sender.process(JOB);
  assert.deepEqual(b.calls, { send: 2, lookup: 1 });
  assert.equal((await b.messages.get(JOB.id))?.providerId, "SM6");
});

test("another worker moved the attempt count: this one sends nothing", async () => {
  // The first request is refused as busy; while this worker waits to retry, another one (which took
  // the job over) starts its own request: the count moved, so this one must not send again.
  const t = setup([{ fail: busy() }, { ok: "SM7" }]);
  const begin = t.messages.beginAttempt.bind(t.messages);
  t.messages.beginAttempt = async (id, expected) => {
    await begin(id, expected); // the other worker wins the race
    return begin(id, expected);
  };
  await t.sender.process(JOB);
  assert.equal(t.calls.send, 1, "only the first request, before the other worker took over");
});

test("a message already in flight elsewhere is not started again: it is looked up first", async () => {
  const t = setup([{ ok: "SM8" }], [{ found: { providerId: "SM7", status: "queued" } }], { attempt: { state: "inflight", count: 1, firstAt: Date.now() } });
  await t.sender.process(JOB);
  assert.equal(t.calls.send, 0);
  assert.equal(t.calls.lookup, 1);
  assert.deepEqual(t.applied, [{ providerId: "SM7", status: "queued" }]);
});

test("a stop during a wait interrupts the job (it stays queued)", async () => {
  const messages = createMemoryMessageStore();
  await messages.create({ id: JOB.id, direction: "out", channel: "sms", jid: "a@x", contactJid: "c@x", receiptRequested: false, status: "pending", createdAt: 0, updatedAt: 0 });
  const provider = createScriptedSmsProvider([{ fail: busy(60_000) }]);
  const sender = createSender({ messages, provider, log: silent, retry: { baseMs: 10, deadlineMs: 600_000 }, applyStatus: async () => undefined, reportError: async () => undefined });
  const stop = new AbortController();
  const running = sender.process(JOB, { signal: stop.signal });
  setTimeout(() => stop.abort(), 50);
  await assert.rejects(running, SendInterrupted);
  assert.equal(messages.attemptOf(JOB.id)?.state, "clear", "a restart resends without a lookup");
});

test("21610 (the recipient replied STOP at some point): the ledger learns it, and the sender is told why", async () => {
  const optedOut: string[] = [];
  const t = setup([{ fail: { kind: "permanent", code: 21610, httpStatus: 400, message: "Attempt to send to unsubscribed recipient" } }], [], {
    onOptedOut: async (from, to) => void optedOut.push(`${from}→${to}`),
  });
  await t.sender.process(JOB);
  assert.deepEqual(optedOut, [`${JOB.from}→${JOB.to}`]);
  assert.equal((await t.messages.get(JOB.id))?.errorCode, 21610);
  assert.equal(t.errors.length, 1);
});

test("an ambiguous create found not sent, but past the deadline: not resent; the sender hears the provider did not answer", async () => {
  const t = setup([{ fail: noAnswer }], [{ notFound: true }], { deadlineMs: 0 });
  await t.sender.process(JOB);
  assert.deepEqual(t.calls, { send: 1, lookup: 1 });
  assert.deepEqual([t.errors[0]?.type, t.errors[0]?.condition], ["wait", "remote-server-timeout"]);
  assert.match(t.errors[0]!.text, /Twilio did not answer .* the message was not sent; the gateway gave up after 1 tries/);
  assert.equal((await t.messages.get(JOB.id))?.status, "failed");
});

test("nothing to send: a job without its record, or a message already settled without a SID (reported as unknown)", async () => {
  const t = setup([]);
  await t.sender.process({ ...JOB, id: "01JNORECORD000000000000000" });
  await t.messages.advance(JOB.id, "unknown");
  await t.sender.process(JOB);
  assert.deepEqual(t.calls, { send: 0, lookup: 0 });
  assert.equal(t.errors.length, 0);
});

test("a failure that is no provider answer (a bug) leaves the request in doubt: the retry looks it up before sending", async () => {
  const t = setup([]); // the scripted provider throws a plain Error on an unexpected send
  await assert.rejects(t.sender.process(JOB), /unexpected send/);
  assert.equal(t.messages.attemptOf(JOB.id)?.state, "inflight");
  t.provider.lookups.push({ found: { providerId: "SM9", status: "sent" } });
  await t.sender.process(JOB);
  assert.deepEqual(t.calls, { send: 1, lookup: 1 });
  assert.equal((await t.messages.get(JOB.id))?.providerId, "SM9");
});

const until = (what: string, ok: () => boolean | Promise<boolean>): Promise<void> => waitUntil(ok, { what, timeoutMs: 5000, intervalMs: 5 });

test("through the engine: a sent text gets its receipt from the delivered callback; a refused one an error reply; both reach the user over XMPP", async () => {
  const messages = createMemoryMessageStore();
  const delivery = createMemoryDelivery({ messages });
  const links = createMemoryLinkStore({ "alice@example.com": "+15550001111" });
  const provider = createScriptedSmsProvider([{ ok: "SMok" }, { fail: { kind: "permanent", code: 21211, httpStatus: 400, message: "Invalid 'To' Phone Number" } }]);
  const inbound = createInbound({ domain: "sms.example.com", links, messages, delivery, log: silent });
  const outbound = createOutbound({
    links,
    messages,
    delivery,
    provider,
    log: { ...silent, error() {} },
    retry: { baseMs: 10, deadlineMs: 60_000 },
    applyStatus: (u) => inbound.applyStatus(u),
    webhooks: { store: createMemoryWebhookStore(), sender: createScriptedWebhookSender(), deadlineMs: 60_000 },
    domain: "sms.example.com",
  });
  const xmpp = createRecordingXmppOut();
  delivery.consume({ toXmpp: xmpp, outbound: (job, meta) => outbound.process(job, meta) });
  try {
    const msg = { from: "alice@example.com/phone", fromBare: "alice@example.com", to: "+15552223333@sms.example.com", type: "chat" as const, oobUrls: [], encrypted: false, receiptRequested: true };
    const ok = await outbound.accept({ ...msg, toLocal: "+15552223333", stanzaId: "s-ok", body: "hello" });
    // The same conversation: its jobs go one after the other, so the provider's script answers them in order.
    const bad = await outbound.accept({ ...msg, toLocal: "+15552223333", stanzaId: "s-bad", body: "hello again" });
    const [okId, badId] = [(ok as { id: string }).id, (bad as { id: string }).id];
    await until("both handed to the provider", async () => (await messages.get(okId))?.providerId === "SMok" && (await messages.get(badId))?.status === "failed");
    assert.equal(await inbound.applyCallback({ id: okId, providerId: "SMok", status: "delivered" }), "applied");
    await until("the receipt and the error delivered", () => xmpp.delivered.length >= 2);
    const seen = xmpp.delivered.map(({ item }) => (item.kind === "receipt" ? `receipt ${item.receiptFor}` : item.kind === "error" ? `error ${item.replyTo} ${item.condition}` : item.kind));
    assert.deepEqual(seen.sort(), ["error s-bad jid-malformed", "receipt s-ok"]);
    assert.deepEqual(
      provider.sent.map((r) => r.body),
      ["hello", "hello again"],
    );
  } finally {
    await delivery.stop();
  }
});
