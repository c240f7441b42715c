// The delivery engine's rules on in-memory queues (adapters/memory/queues.ts): order per conversation,
// a written entry never written again while in hand, bounces and their backoff, failures, deadlines,
// dead letters and their retry, a restart resuming its own work, a dead consumer's work taken over,
// idempotency keys. No Redis, no XMPP server: integration tests run the same engine on real ones.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { createMemoryQueues, type MemoryQueues } from "../../src/adapters/memory/queues.js";
import { createDeliveryEngine, type DeliveryEngine, type DeliveryOptions } from "../../src/core/delivery/engine.js";
import { deliveryKey, type OutboundJob, type XmppDelivery } from "../../src/core/model/message.js";
import { GiveUp, RetryLater, type DeadLetter, type DeliveryMeta, type XmppSink } from "../../src/core/ports.js";
import { waitUntil } from "../support/wait.js";

const quiet = { info() {}, warn() {}, error() {} };
const engines: DeliveryEngine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.stop()));
});

const chat = (id: string, to = "alice@example.com", from = "+15552223333@sms.example.com", acceptedAt = Date.now()): XmppDelivery => ({
  kind: "chat",
  id,
  from,
  to,
  body: id,
  mediaUrls: [],
  acceptedAt,
});
const job = (id: string, from = "+15550001111", to = "+15552223333"): OutboundJob => ({ id, from, to, body: id, mediaUrls: [] });

function engine(queues: MemoryQueues, opts: Partial<DeliveryOptions> = {}): DeliveryEngine {
  const e = createDeliveryEngine(queues, quiet, { partitions: 2, dedupeTtlS: 60, consumerName: "gw-1", blockMs: 30, retryDelayMs: { min: 10, max: 40 }, bounceRetryMs: 100, ...opts });
  engines.push(e);
  return e;
}

/** A recording XMPP side: writes, then a barrier that proves them after `barrierMs`, bouncing as told. */
function sink(o: { barrierMs?: number; bounce?: (id: string, write: number) => string | undefined; deliver?: (item: XmppDelivery, meta: DeliveryMeta) => void; barrierFails?: () => boolean } = {}) {
  const writes: { id: string; at: number; attempt: number; proven: boolean }[] = [];
  const twiceInHand: string[] = [];
  const s: XmppSink = {
    async deliver(item, meta) {
      o.deliver?.(item, meta);
      if (writes.some((w) => w.id === item.id && !w.proven)) twiceInHand.push(item.id);
      writes.push({ id: item.id, at: Date.now(), attempt: meta.attempt, proven: false });
    },
    async barrier() {
      const mark = writes.length;
      await new Promise((r) => setTimeout(r, o.barrierMs ?? 5));
      if (o.barrierFails?.()) throw new Error("barrier timed out");
      const bounced = new Map<string, string>();
      writes.slice(0, mark).forEach((w, i) => {
        if (w.proven) return;
        w.proven = true;
        const reason = o.bounce?.(w.id, writes.filter((x, j) => x.id === w.id && j <= i).length);
        if (reason) bounced.set(deliveryKey(chat(w.id)), reason);
      });
      return bounced;
    },
  };
  return { sink: s, writes, twiceInHand, ids: () => writes.map((w) => w.id) };
}

const until = (what: string, ok: () => boolean | Promise<boolean>, ms = 5000): Promise<void> => waitUntil(ok, { what, timeoutMs: ms, intervalMs: 5 });

const noOutbound = async () => undefined;

test("toward XMPP: each conversation in the order accepted, every entry acknowledged", async () => {
  const q = createMemoryQueues();
  const e = engine(q, { partitions: 3 });
  const s = sink();
  e.consume({ toXmpp: s.sink, outbound: noOutbound });
  const users = ["a@x", "b@x", "c@x", "d@x"];
  for (let i = 0; i < 40; i++) await e.enqueueToXmpp(chat(`m${i}`, users[i % 4]));
  await until("all written", () => s.writes.length >= 40);
  for (const u of users) {
    const mine = s.ids().filter((id) => Number(id.slice(1)) % 4 === users.indexOf(u));
    assert.deepEqual(
      mine,
      [...mine].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))),
      `order for ${u}`,
    );
  }
  await until("all acknowledged", async () => (await e.stats()).toXmpp.depth === 0);
});

test("an entry written and waiting for its barrier is never written again, even when pending entries are read again", async () => {
  const q = createMemoryQueues();
  // Pending for gw-1 at its start (a restart): read from "0", while the barrier takes its time.
  for (let i = 0; i < 5; i++) await q.add("to-xmpp", 0, JSON.stringify(chat(`slow${i}`)));
  assert.equal((await q.reader("to-xmpp", 0, "gw-1", 10).read(">", 10, 10)).length, 5);
  const e = engine(q, { partitions: 1 });
  const s = sink({ barrierMs: 150 });
  e.consume({ toXmpp: s.sink, outbound: noOutbound });
  await until("all proven", async () => s.writes.length >= 5 && (await e.stats()).toXmpp.depth === 0);
  assert.deepEqual(s.twiceInHand, []);
  assert.equal(s.writes.length, 5);
});

test("a bounce holds its conversation for the backoff, others go on; the next write goes through and is acknowledged", async () => {
  const q = createMemoryQueues();
  const e = engine(q, { partitions: 1, bounceRetryMs: 200 });
  const s = sink({ bounce: (id, n) => (id === "x" && n === 1 ? "service-unavailable" : undefined) });
  const dead: DeadLetter[] = [];
  e.consume({ toXmpp: s.sink, outbound: noOutbound, onDeadLetter: async (dl) => void dead.push(dl) });
  await e.enqueueToXmpp(chat("x", "alice@x"));
  await until("x bounced once", () => s.ids().includes("x"));
  await new Promise((r) => setTimeout(r, 30)); // its barrier has come back
  await e.enqueueToXmpp(chat("y", "alice@x")); // after x, in its conversation
  await e.enqueueToXmpp(chat("z", "bob@x")); // another conversation
  await until("z written", () => s.ids().includes("z"));
  assert.equal(s.ids().includes("y"), false, "y waits behind x");
  await until("x again, then y", () => s.ids().filter((id) => id === "x").length === 2 && s.ids().includes("y"), 3000);
  const writes = s.writes.filter((w) => w.id === "x");
  assert.ok(writes[1]!.at - writes[0]!.at >= 200, "the backoff was waited");
  assert.ok(s.ids().lastIndexOf("x") < s.ids().indexOf("y"), "y after x's second write");
  await until("acknowledged", async () => (await e.stats()).toXmpp.depth === 0);
  assert.deepEqual(dead, []);
  assert.deepEqual(s.twiceInHand, []);
});

test("the last allowed bounce makes a dead letter with the reason, and the hook is told", async () => {
  const q = createMemoryQueues();
  const e = engine(q, { partitions: 1, bounceRetryMs: 20, maxBounces: 3 });
  const s = sink({ bounce: () => "service-unavailable" });
  const dead: DeadLetter[] = [];
  e.consume({ toXmpp: s.sink, outbound: noOutbound, onDeadLetter: async (dl) => void dead.push(dl) });
  await e.enqueueToXmpp(chat("ghost"));
  await until("dead-lettered", () => dead.length === 1, 3000);
  assert.equal(s.writes.length, 3);
  assert.equal(dead[0]!.reason, "bounced by the XMPP server 3 times: service-unavailable");
  assert.deepEqual(
    (await e.deadLetters(10)).map((d) => d.reason),
    [dead[0]!.reason],
  );
  assert.equal((await e.stats()).toXmpp.depth, 0);
});

test("a chat past the deadline is a dead letter, not written", async () => {
  const q = createMemoryQueues();
  const e = engine(q, { toXmppDeadlineMs: 60_000 });
  const s = sink();
  const dead: DeadLetter[] = [];
  e.consume({ toXmpp: s.sink, outbound: noOutbound, onDeadLetter: async (dl) => void dead.push(dl) });
  await e.enqueueToXmpp(chat("old", "alice@x", "+1@sms", Date.now() - 120_000));
  await until("dead-lettered", () => dead.length === 1);
  assert.equal(dead[0]!.reason, "not delivered to XMPP within 1 minutes");
  assert.equal(s.writes.length, 0);
});

test("a delivery that keeps failing is tried maxFailures times, then dead-lettered; GiveUp at once", async () => {
  const q = createMemoryQueues();
  const e = engine(q, { partitions: 1, maxFailures: 3 });
  let tries = 0;
  const s = sink({
    deliver: (item) => {
      if (item.id === "broken") {
        tries++;
        throw new Error("cannot render");
      }
      if (item.id === "too-big") throw new GiveUp("the message is too large");
    },
  });
  const dead: DeadLetter[] = [];
  e.consume({ toXmpp: s.sink, outbound: noOutbound, onDeadLetter: async (dl) => void dead.push(dl) });
  await e.enqueueToXmpp(chat("too-big", "bob@x"));
  await e.enqueueToXmpp(chat("broken"));
  await until("both dead-lettered", () => dead.length === 2, 3000);
  assert.equal(tries, 3);
  assert.deepEqual(dead.map((d) => d.reason).sort(), ["cannot render", "the message is too large"]);
});

test("while the XMPP side is away (RetryLater) nothing is dead-lettered; everything goes out when it is back", async () => {
  const q = createMemoryQueues();
  const e = engine(q, { partitions: 1, maxFailures: 2 });
  let away = true;
  const s = sink({
    deliver: () => {
      if (away) throw new RetryLater("not connected");
    },
  });
  const dead: DeadLetter[] = [];
  e.consume({ toXmpp: s.sink, outbound: noOutbound, onDeadLetter: async (dl) => void dead.push(dl) });
  for (let i = 0; i < 3; i++) await e.enqueueToXmpp(chat(`w${i}`));
  await new Promise((r) => setTimeout(r, 200));
  away = false;
  e.wake();
  await until("delivered", () => s.writes.length === 3);
  assert.deepEqual(s.ids(), ["w0", "w1", "w2"]);
  assert.deepEqual(dead, []);
});

test("a failed barrier leaves the batch pending: it is written again (attempt 2) and then acknowledged", async () => {
  const q = createMemoryQueues();
  const e = engine(q, { partitions: 1 });
  let fail = true;
  const s = sink({ barrierFails: () => (fail ? ((fail = false), true) : false) });
  e.consume({ toXmpp: s.sink, outbound: noOutbound });
  await e.enqueueToXmpp(chat("unproven"));
  await until("written twice", () => s.writes.length === 2);
  assert.deepEqual(
    s.writes.map((w) => w.attempt),
    [1, 2],
  );
  await until("acknowledged", async () => (await e.stats()).toXmpp.depth === 0);
});

test("outbound: a conversation's jobs one after the other, conversations at the same time", async () => {
  const q = createMemoryQueues();
  const e = engine(q, { partitions: 1 });
  const log: string[] = [];
  let running = 0;
  let most = 0;
  e.consume({
    toXmpp: sink().sink,
    outbound: async (j) => {
      running++;
      most = Math.max(most, running);
      log.push(`start ${j.id}`);
      await new Promise((r) => setTimeout(r, 20));
      log.push(`end ${j.id}`);
      running--;
    },
  });
  for (const [id, to] of [
    ["a1", "+15552220001"],
    ["b1", "+15552220002"],
    ["a2", "+15552220001"],
    ["b2", "+15552220002"],
  ] as const)
    await e.enqueueOutbound(job(id, "+15550001111", to));
  await until("all done", () => log.filter((l) => l.startsWith("end")).length === 4);
  assert.ok(log.indexOf("end a1") < log.indexOf("start a2"), "a2 waits for a1");
  assert.ok(log.indexOf("end b1") < log.indexOf("start b2"), "b2 waits for b1");
  assert.equal(most, 2, "two conversations at once");
});

test("outbound: a job taken out of its queue while in hand has its waits ended and is not tried again", async () => {
  const q = createMemoryQueues();
  const e = engine(q, { partitions: 1 });
  let calls = 0;
  let aborted = false;
  e.consume({
    toXmpp: sink().sink,
    outbound: async (_j, meta) => {
      calls++;
      await new Promise<void>((resolve) => meta.signal?.addEventListener("abort", () => resolve(), { once: true }));
      aborted = true;
      throw new Error("interrupted");
    },
  });
  await e.enqueueOutbound(job("gone"));
  await until("in hand", () => calls === 1);
  assert.equal(await e.deadLetterWhere((queue, item) => (queue === "outbound" && item.id === "gone" ? "sender unlinked" : undefined)), 1);
  await until("its wait ended", () => aborted);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(calls, 1);
  assert.deepEqual(
    (await e.deadLetters(10)).map((d) => d.reason),
    ["sender unlinked"],
  );
});

test("a dead letter can be retried (then handled again) or refused", async () => {
  const q = createMemoryQueues();
  const e = engine(q, { partitions: 1, maxFailures: 1 });
  let fail = true;
  const done: string[] = [];
  e.consume({
    toXmpp: sink().sink,
    outbound: async (j) => {
      if (fail) throw new Error("provider exploded");
      done.push(j.id);
    },
  });
  await e.enqueueOutbound(job("again"));
  await until("dead-lettered", async () => (await e.deadLetters(10)).length === 1);
  const [dl] = await e.deadLetters(10);
  assert.deepEqual(await e.retryDeadLetter(dl!.id, async () => "the user left"), { outcome: "refused", reason: "the user left" });
  fail = false;
  assert.deepEqual(await e.retryDeadLetter(dl!.id), { outcome: "queued" });
  await until("handled", () => done.includes("again"));
  assert.deepEqual(await e.retryDeadLetter(dl!.id), { outcome: "not-found" });
});

test("a restart of the same consumer resumes its own pending work; another consumer takes over a dead one's", async () => {
  let clock = Date.now();
  const q = createMemoryQueues({ now: () => clock });
  // gw-1 read two entries and died before finishing them.
  const partitionOfAll = 0;
  await q.add("to-xmpp", partitionOfAll, JSON.stringify(chat("left-1")));
  await q.add("to-xmpp", partitionOfAll, JSON.stringify(chat("left-2")));
  const dying = q.reader("to-xmpp", partitionOfAll, "gw-1", 10);
  assert.equal((await dying.read(">", 10, 10)).length, 2);

  const restarted = engine(q, { partitions: 1, consumerName: "gw-1" });
  const s1 = sink();
  restarted.consume({ toXmpp: s1.sink, outbound: noOutbound });
  await until("resumed", () => s1.writes.length === 2);
  await restarted.stop();

  await q.add("to-xmpp", partitionOfAll, JSON.stringify(chat("left-3")));
  assert.equal((await q.reader("to-xmpp", partitionOfAll, "gw-2", 10).read(">", 10, 10)).length, 1); // gw-2 dies holding it
  clock += 10 * 60_000;
  const other = engine(q, { partitions: 1, consumerName: "gw-3", claimIdleMs: 60_000 });
  const s3 = sink();
  other.consume({ toXmpp: s3.sink, outbound: noOutbound });
  await until("taken over", () => s3.ids().includes("left-3"));
});

test("idempotency keys: stored once; a legacy key counts as seen; a marker that is not our id is replaced when asked", async () => {
  const q = createMemoryQueues();
  const e = engine(q);
  assert.equal(await e.enqueueToXmpp(chat("SM1"), { key: "twilio:AC1:SM1" }), true);
  assert.equal(await e.enqueueToXmpp(chat("SM1"), { key: "twilio:AC1:SM1" }), false);
  assert.equal(await e.idForDedupeKey("twilio:AC1:SM1"), "SM1");
  await q.add("to-xmpp", 0, "{}", { key: "SM2", itemId: "SM2", ttlS: 60 }); // what an older version left
  assert.equal(await e.enqueueToXmpp(chat("SM2"), { key: "twilio:AC1:SM2", legacy: "SM2" }), false);
  await q.add("to-xmpp", 0, "{}", { key: "webhook:bot:k", itemId: "webhook:bot:k", ttlS: 60 }); // a forged marker
  const id = "01JABCDEFGHJKMNPQRSTVWXYZ0";
  assert.equal(await e.enqueueToXmpp(chat(id), { key: "webhook:bot:k", ownIdsOnly: true }), true);
  assert.equal(await e.enqueueToXmpp(chat("01JABCDEFGHJKMNPQRSTVWXYZ1"), { key: "webhook:bot:k", ownIdsOnly: true }), false);
  assert.equal(await e.idForDedupeKey("webhook:bot:k"), id);
});

test("an outbound job is queued only with its message record", async () => {
  const records = new Set(["has-record"]);
  const e = engine(createMemoryQueues({ hasRecord: (id) => records.has(id) }));
  assert.equal(await e.enqueueOutbound(job("has-record"), "stanza:k"), true);
  assert.equal(await e.enqueueOutbound(job("has-record"), "stanza:k"), false, "the same key again");
  await assert.rejects(e.enqueueOutbound(job("no-record")), /no message record/);
});

test("while the store is down the engine waits and loses nothing", async () => {
  const q = createMemoryQueues();
  const e = engine(q, { partitions: 1 });
  const s = sink();
  await e.enqueueToXmpp(chat("kept"));
  q.down = true;
  e.consume({ toXmpp: s.sink, outbound: noOutbound });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(s.writes.length, 0);
  q.down = false;
  await until("delivered", () => s.ids().includes("kept"), 3000);
});
