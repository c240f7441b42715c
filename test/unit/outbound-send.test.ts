// The send policy against in-memory ports: what a redelivered job does after a crash (inflight vs
// clear), Retry-After, the deadline, and that an ambiguous outcome is never resent blindly.
import assert from "node:assert/strict";
import { test } from "node:test";
import { canAdvance, isFinal, type MessageRecord, type MessageStatus, type OutboundJob } from "../../src/core/message.js";
import { createSender, SendInterrupted } from "../../src/core/outbound-send.js";
import { ProviderError, type AttemptState, type MessageStore, type ProviderFailure, type SmsLookupResult, type SmsProvider } from "../../src/core/ports.js";

function memoryStore(): MessageStore & { records: Map<string, MessageRecord>; attempts: Map<string, AttemptState>; sids: Map<string, string> } {
  const records = new Map<string, MessageRecord>();
  const attempts = new Map<string, AttemptState>();
  const sids = new Map<string, string>();
  const once = new Set<string>();
  return {
    records,
    attempts,
    sids,
    async create(r) {
      records.set(r.id, { ...r });
    },
    async get(id) {
      const r = records.get(id);
      return r && { ...r };
    },
    async advance(id, status, patch) {
      const r = records.get(id);
      if (!r) return undefined;
      if (patch?.providerId && !r.providerId) {
        r.providerId = patch.providerId;
        sids.set(patch.providerId, id);
      }
      const changed = canAdvance(r.status, status) && !isFinal(r.status);
      if (changed) {
        r.status = status;
        if (patch?.errorCode !== undefined) r.errorCode = patch.errorCode;
      }
      return { record: { ...r }, changed };
    },
    async callback() {
      return { outcome: "unknown" };
    },
    async markOnce(id, what) {
      const k = `${id}:${what}`;
      if (once.has(k)) return false;
      once.add(k);
      return true;
    },
    async idForProviderId(sid) {
      return sids.get(sid);
    },
    async startSending(id) {
      const r = records.get(id);
      if (!r) return undefined;
      const a = attempts.get(id) ?? { state: "none", count: 0 };
      if (r.status === "pending" && r.providerId === undefined && a.state !== "inflight") {
        const begun: AttemptState = { state: "inflight", count: a.count + 1, firstAt: a.firstAt ?? Date.now() };
        attempts.set(id, begun);
        return { begun: { ...begun } };
      }
      return { record: { ...r }, attempt: { ...a } };
    },
    async beginAttempt(id, expected) {
      const a = attempts.get(id) ?? { state: "none", count: 0 };
      if (a.count !== expected || !records.has(id)) return undefined;
      const next: AttemptState = { state: "inflight", count: a.count + 1, firstAt: a.firstAt ?? Date.now() };
      attempts.set(id, next);
      return { ...next };
    },
    async clearAttempt(id) {
      const a = attempts.get(id);
      if (a) attempts.set(id, { ...a, state: "clear" });
    },
  };
}

type Step = { ok: string } | { fail: ProviderFailure };

function scriptedProvider(sends: Step[], lookups: SmsLookupResult[] = []) {
  const calls = { send: 0, lookup: 0 };
  const provider: SmsProvider = {
    name: "sandbox",
    async send() {
      calls.send++;
      const step = sends.shift();
      if (!step) throw new Error("unexpected send");
      if ("fail" in step) throw new ProviderError(step.fail);
      return { providerId: step.ok, status: "queued" };
    },
    async lookup() {
      calls.lookup++;
      const r = lookups.shift();
      if (!r) throw new Error("unexpected lookup");
      return r;
    },
  };
  return { provider, calls };
}

const JOB: OutboundJob = { id: "01JOB", from: "+15550001111", to: "+15552223333", body: "hi", mediaUrls: [] };
const silent = { info() {}, warn() {} };

function setup(sends: Step[], lookups: SmsLookupResult[] = [], opts: { attempt?: AttemptState; deadlineMs?: number } = {}) {
  const messages = memoryStore();
  const now = Date.now();
  messages.records.set(JOB.id, { id: JOB.id, direction: "out", channel: "sms", jid: "a@x/r", stanzaId: "s1", contactJid: "+15552223333@sms", receiptRequested: false, status: "pending", createdAt: now, updatedAt: now });
  if (opts.attempt) messages.attempts.set(JOB.id, opts.attempt);
  const { provider, calls } = scriptedProvider(sends, lookups);
  const errors: { type: string; condition: string; text: string }[] = [];
  const applied: { providerId: string; status: MessageStatus }[] = [];
  const sleeps: number[] = [];
  const sender = createSender({
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
  });
  return { sender, messages, calls, errors, applied, sleeps };
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
  assert.equal(t.messages.records.get(JOB.id)?.providerId, "SM2");
});

test("after a crash mid-request: lookups keep failing → not resent, status unknown, the sender is told", async () => {
  const t = setup([], [{ unknown: "HTTP 500" }, { unknown: "HTTP 500" }, { unknown: "HTTP 500" }], { attempt: { state: "inflight", count: 1, firstAt: Date.now() } });
  await t.sender.process(JOB);
  assert.deepEqual(t.calls, { send: 0, lookup: 3 });
  assert.equal(t.messages.records.get(JOB.id)?.status, "unknown");
  assert.equal(t.errors.length, 1);
  assert.match(t.errors[0]!.text, /may or may not have been sent/);
});

test("after a stop during a backoff (clear): resent without a lookup", async () => {
  const t = setup([{ ok: "SM3" }], [], { attempt: { state: "clear", count: 2, firstAt: Date.now() - 1000 } });
  await t.sender.process(JOB);
  assert.deepEqual(t.calls, { send: 1, lookup: 0 });
  assert.equal(t.messages.attempts.get(JOB.id)?.count, 3);
});

test("a job whose record already has a SID is done", async () => {
  const t = setup([]);
  t.messages.records.get(JOB.id)!.providerId = "SMx";
  await t.sender.process(JOB);
  assert.deepEqual(t.calls, { send: 0, lookup: 0 });
});

test("429 with Retry-After waits at least that long, then sends once", async () => {
  const t = setup([{ fail: busy(1000) }, { ok: "SM4" }]);
  await t.sender.process(JOB);
  assert.equal(t.calls.send, 2);
  assert.equal(t.sleeps.length, 1);
  assert.ok(t.sleeps[0]! >= 1000, `slept ${t.sleeps[0]}`);
  assert.equal(t.messages.attempts.get(JOB.id)?.state, "inflight", "the successful request left its marker; the SID settles it");
});

test("a permanent refusal is tried once and reported", async () => {
  const t = setup([{ fail: { kind: "permanent", code: 21211, httpStatus: 400, message: "bad number" } }]);
  await t.sender.process(JOB);
  assert.equal(t.calls.send, 1);
  assert.equal(t.messages.records.get(JOB.id)?.status, "failed");
  assert.equal(t.errors[0]?.condition, "jid-malformed");
});

test("the deadline: a Retry-After past it ends the retries with a resource-constraint reply", async () => {
  const t = setup([{ fail: busy(5000) }], [], { deadlineMs: 2000 });
  await t.sender.process(JOB);
  assert.equal(t.calls.send, 1);
  assert.equal(t.sleeps.length, 0);
  assert.equal(t.messages.records.get(JOB.id)?.status, "failed");
  assert.deepEqual([t.errors[0]?.type, t.errors[0]?.condition], ["wait", "resource-constraint"]);
  assert.match(t.errors[0]!.text, /not sent.*gave up after 1 try/);
});

test("an ambiguous create is looked up: found → adopted; not found → resent", async () => {
  const a = setup([{ fail: noAnswer }], [{ found: { providerId: "SM5", status: "queued" } }]);
  await a.sender.process(JOB);
  assert.deepEqual(a.calls, { send: 1, lookup: 1 });
  assert.equal(a.messages.records.get(JOB.id)?.providerId, "SM5");

  const b = setup([{ fail: noAnswer }, { ok: "SM6" }], [{ notFound: true }]);
  await b.sender.process(JOB);
  assert.deepEqual(b.calls, { send: 2, lookup: 1 });
  assert.equal(b.messages.records.get(JOB.id)?.providerId, "SM6");
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
  const messages = memoryStore();
  messages.records.set(JOB.id, { id: JOB.id, direction: "out", channel: "sms", jid: "a@x", contactJid: "c@x", receiptRequested: false, status: "pending", createdAt: 0, updatedAt: 0 });
  const { provider } = scriptedProvider([{ fail: busy(60_000) }]);
  const sender = createSender({ messages, provider, log: silent, retry: { baseMs: 10, deadlineMs: 600_000 }, applyStatus: async () => undefined, reportError: async () => undefined });
  const stop = new AbortController();
  const running = sender.process(JOB, { signal: stop.signal });
  setTimeout(() => stop.abort(), 50);
  await assert.rejects(running, SendInterrupted);
  assert.equal(messages.attempts.get(JOB.id)?.state, "clear", "a restart resends without a lookup");
});
