// The spool's policy, with a real journal on disk and a stand-in for the Redis-backed accept: when to
// journal, replay through the normal accept path, dedupe by MessageSid, order, and what is set aside.
// The last test runs the real inbound flow on the in-memory adapters, with the store "down".
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, test } from "node:test";
import { createJournal } from "../../src/adapters/journal/journal.js";
import { createMemoryLinkStore } from "../../src/adapters/memory/link-store.js";
import { createMemoryMessageStore } from "../../src/adapters/memory/message-store.js";
import { createMemoryDelivery } from "../../src/adapters/memory/delivery.js";
import { createInbound, type Inbound, type InboundOutcome, type InboundSms } from "../../src/core/flows/sms-in.js";
import { createSpool, parseSpooledSms, type Spool } from "../../src/core/flows/spool.js";
import { GatewayError } from "../../src/errors.js";

class Down extends Error {}

/** A Redis-like store: idempotent by MessageSid, can be "down" (fails fast) or "hung" (never answers). */
function fakeInbound() {
  const state = { mode: "up" as "up" | "down" | "hung" | "broken", stored: [] as InboundSms[], seen: new Set<string>(), statuses: 0 };
  const inbound: Inbound = {
    async accept(sms): Promise<InboundOutcome> {
      if (state.mode === "down") throw new Down("offline");
      if (state.mode === "hung") return new Promise(() => undefined);
      if (state.mode === "broken") throw new TypeError("a bug");
      if (state.seen.has(sms.providerId)) return { outcome: "duplicate", id: sms.providerId, jid: "alice@localhost" };
      state.seen.add(sms.providerId);
      state.stored.push(sms);
      return { outcome: "queued", id: sms.providerId, jid: "alice@localhost" };
    },
    async applyStatus() {
      if (state.mode === "down") throw new Down("offline");
      state.statuses++;
      return "applied";
    },
    async applyCallback() {
      if (state.mode === "down") throw new Down("offline");
      state.statuses++;
      return "applied";
    },
  };
  return { state, inbound };
}

const quiet = { info() {}, warn() {}, error() {} };
const dirs: string[] = [];
const spools: Spool[] = [];
afterEach(async () => {
  for (const s of spools.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function setup(opts: { dir?: string } = {}) {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "spool-test-"));
  if (!opts.dir) dirs.push(dir);
  const journal = createJournal({ dir, parse: parseSpooledSms });
  await journal.init();
  const store = fakeInbound();
  const spool = createSpool({ inbound: store.inbound, journal, isStoreDown: (e) => e instanceof Down, deadlineMs: 200, replayIntervalMs: 60_000, log: quiet });
  spools.push(spool);
  return { dir, journal, store, spool };
}

const sms = (sid: string, body = `body of ${sid}`): InboundSms => ({
  providerId: sid,
  from: "+15552223333",
  to: "+15550001111",
  body,
  media: [{ url: "https://x.test/a.jpg", contentType: "image/jpeg" }],
});

test("Redis up: accepted directly, nothing journaled", async () => {
  const { store, spool, journal } = await setup();
  assert.equal((await spool.accept(sms("SM1"))).outcome, "queued");
  assert.equal(journal.pending(), 0);
  assert.equal(store.state.stored.length, 1);
});

test("Redis down: journaled; replayed once it is back, keeping the arrival time", async () => {
  const { store, spool, journal } = await setup();
  store.state.mode = "down";
  const before = Date.now();
  assert.deepEqual(await spool.accept(sms("SM2")), { outcome: "journaled", id: "SM2" });
  assert.equal(journal.pending(), 1);
  await spool.replay(); // still down: stays
  assert.equal(journal.pending(), 1);
  store.state.mode = "up";
  await spool.replay();
  assert.equal(journal.pending(), 0);
  assert.equal(store.state.stored.length, 1);
  const stored = store.state.stored[0]!;
  assert.equal(stored.providerId, "SM2");
  assert.deepEqual(stored.media, [{ url: "https://x.test/a.jpg", contentType: "image/jpeg" }]);
  assert.ok(stored.receivedAt! >= before && stored.receivedAt! <= Date.now());
});

test("a Redis that stays down does not leave a journal file per replay attempt", async () => {
  const { store, spool, journal, dir } = await setup();
  store.state.mode = "down";
  for (let i = 0; i < 5; i++) {
    await spool.accept(sms(`SMd${i}`));
    await spool.replay();
  }
  assert.equal(journal.pending(), 5);
  assert.ok(readdirSync(dir).filter((f) => f.startsWith("replay-")).length <= 1, readdirSync(dir).join(", "));
  store.state.mode = "up";
  await spool.replay();
  assert.deepEqual(
    store.state.stored.map((s) => s.providerId),
    ["SMd0", "SMd1", "SMd2", "SMd3", "SMd4"],
  );
  assert.deepEqual(readdirSync(dir), []);
});

test("a hung Redis counts as down after the deadline", async () => {
  const { store, spool, journal } = await setup();
  store.state.mode = "hung";
  const t0 = Date.now();
  assert.equal((await spool.accept(sms("SM3"))).outcome, "journaled");
  assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
  assert.equal(journal.pending(), 1);
});

test("the same MessageSid journaled twice (a Twilio retry) is stored once", async () => {
  const { store, spool } = await setup();
  store.state.mode = "down";
  await spool.accept(sms("SM4"));
  await spool.accept(sms("SM4"));
  store.state.mode = "up";
  await spool.replay();
  assert.equal(store.state.stored.filter((s) => s.providerId === "SM4").length, 1);
});

test("while the journal holds older SMS, newer ones queue behind them (order kept)", async () => {
  const { store, spool, journal } = await setup();
  store.state.mode = "down";
  await spool.accept(sms("SM5a"));
  store.state.mode = "up";
  // Redis is back but the replay has not run yet: the next SMS must not overtake the journaled one.
  assert.equal((await spool.accept(sms("SM5b"))).outcome, "journaled");
  await spool.replay();
  assert.equal(journal.pending(), 0);
  assert.deepEqual(
    store.state.stored.map((s) => s.providerId),
    ["SM5a", "SM5b"],
  );
});

test("a crash mid-replay: the next start replays the file again without storing anything twice", async () => {
  const first = await setup();
  first.store.state.mode = "down";
  await first.spool.accept(sms("SM6a"));
  await first.spool.accept(sms("SM6b"));
  // A replay that got through the first entry, then "crashed" (Redis went away, file kept).
  const [file] = await first.journal.rotate();
  for await (const e of first.journal.read(file!)) {
    first.store.state.mode = "up";
    await first.store.inbound.accept(e);
    break;
  }
  await first.spool.stop();
  const second = await setup({ dir: first.dir }); // same dir, as after a restart
  second.store.state.seen = first.store.state.seen; // same Redis
  second.store.state.stored = first.store.state.stored;
  second.spool.start();
  await second.spool.replay();
  assert.equal(second.journal.pending(), 0);
  assert.deepEqual(
    second.store.state.stored.map((s) => s.providerId),
    ["SM6a", "SM6b"],
  );
});

test("an entry the store refuses for good is set aside; the rest still goes through", async () => {
  const { store, spool, journal, dir } = await setup();
  store.state.mode = "down";
  await spool.accept(sms("SM7a"));
  store.state.mode = "broken";
  await spool.replay();
  assert.equal(journal.pending(), 0);
  assert.match(readFileSync(join(dir, "set-aside.jsonl"), "utf8"), /SM7a/);
});

test("neither Redis nor the journal: a 503-class error, never a silent loss", async () => {
  const { store, spool, dir } = await setup();
  store.state.mode = "down";
  rmSync(dir, { recursive: true, force: true });
  const { writeFileSync } = await import("node:fs");
  writeFileSync(dir, ""); // the journal directory is unusable
  await assert.rejects(spool.accept(sms("SM8")), (e: unknown) => e instanceof GatewayError && e.httpStatus === 503);
  rmSync(dir);
});

test("status callbacks are not journaled: Redis down → 503-class error", async () => {
  const { store, spool } = await setup();
  store.state.mode = "down";
  await assert.rejects(spool.applyStatus({ id: "x", status: "delivered" }), (e: unknown) => e instanceof GatewayError && e.httpStatus === 503);
  store.state.mode = "up";
  assert.equal(await spool.applyStatus({ id: "x", status: "delivered" }), "applied");
});

test("parseSpooledSms accepts what the spool writes and refuses anything else", () => {
  const rec = { v: 1, ...sms("SM9"), receivedAt: 1 };
  assert.deepEqual(parseSpooledSms(JSON.parse(JSON.stringify(rec))), rec);
  assert.equal(parseSpooledSms({ ...rec, v: 2 }), undefined);
  assert.equal(parseSpooledSms({ ...rec, receivedAt: "x" }), undefined);
  assert.equal(parseSpooledSms({ ...rec, media: [{}] }), undefined);
  assert.equal(parseSpooledSms(null), undefined);
});

test("with the real inbound flow on the in-memory adapters: a store that is down journals; the replay delivers each text once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "spool-test-"));
  dirs.push(dir);
  const journal = createJournal({ dir, parse: parseSpooledSms });
  await journal.init();
  const messages = createMemoryMessageStore();
  const delivery = createMemoryDelivery({ messages });
  const inbound = createInbound({ domain: "sms.example.com", links: createMemoryLinkStore({ "alice@localhost": "+15550001111" }), messages, delivery, log: quiet });
  const spool = createSpool({ inbound, journal, isStoreDown: (e) => delivery.queues.isUnavailable(e), deadlineMs: 200, replayIntervalMs: 60_000, log: quiet });
  spools.push(spool);
  delivery.queues.down = true;
  assert.equal((await spool.accept({ ...sms("SMr1"), account: "AC1" })).outcome, "journaled");
  assert.equal((await spool.accept({ ...sms("SMr1"), account: "AC1" })).outcome, "journaled", "a Twilio retry");
  await spool.replay();
  assert.equal(journal.pending(), 2, "still down");
  delivery.queues.down = false;
  await spool.replay();
  assert.equal(journal.pending(), 0);
  assert.deepEqual(
    delivery.toXmpp().map((i) => `${i.kind} ${i.id}`),
    ["chat SMr1"],
  );
  assert.equal((await spool.accept({ ...sms("SMr1"), account: "AC1" })).outcome, "duplicate");
});
