// Reconciliation with the provider (core/flows/reconcile.ts) on the in-memory adapters: texts the
// gateway never received are taken in once through the webhook's accept path, whatever was received
// before stays a duplicate, only linked numbers (and, with users' own accounts, only their own numbers)
// count, the cursor moves only over what was stored; final statuses that never came are fetched and
// applied (receipt, error), asked again later while not final, given up on after two days; one run at a
// time, a periodic run skipped after a recent one, a bad `since` refused. No Redis, no provider.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMemoryDelivery } from "../../src/adapters/memory/delivery.js";
import { createMemoryIntroductionStore } from "../../src/adapters/memory/introduction-store.js";
import { createMemoryLinkStore } from "../../src/adapters/memory/link-store.js";
import { createMemoryMessageLog } from "../../src/adapters/memory/message-log.js";
import { createMemoryMessageStore } from "../../src/adapters/memory/message-store.js";
import { createMemoryReconcileState } from "../../src/adapters/memory/reconcile-state.js";
import { createReconcile, inboundTotals, RECONCILE_TIMING, type ReconcileOutcome, type ReconcileReport } from "../../src/core/flows/reconcile.js";
import { createInbound } from "../../src/core/flows/sms-in.js";
import { newOutgoingRecord, type XmppDelivery } from "../../src/core/model/message.js";
import { createSandboxProvider } from "../../src/adapters/sandbox/provider.js";
import type { ProviderMessageLog } from "../../src/core/ports.js";
import { isGatewayError } from "../../src/errors.js";

const DOMAIN = "sms.example.com";
const MAIN = `AC${"1".repeat(32)}`;
const OWN = `AC${"2".repeat(32)}`;
const ALICE = "alice@example.com";
const BOB = "bob@example.com";
const ALICE_NUMBER = "+15550001111";
const BOB_NUMBER = "+15550002222";
const THEM = "+15552223333";
const MIN = 60_000;
const HOUR = 60 * MIN;
const quiet = { info() {}, warn() {} };

function setup(o: { byo?: boolean; now?: number; provider?: ProviderMessageLog } = {}) {
  const clock = { now: o.now ?? Date.UTC(2026, 11, 8, 12) };
  const now = () => clock.now;
  const links = createMemoryLinkStore({ [ALICE]: ALICE_NUMBER, [BOB]: BOB_NUMBER });
  const messages = createMemoryMessageStore({ now });
  const delivery = createMemoryDelivery({ messages, now });
  const inbound = createInbound({ domain: DOMAIN, links, messages, delivery, log: quiet, introductions: createMemoryIntroductionStore() });
  const provider = createMemoryMessageLog(MAIN);
  const state = createMemoryReconcileState();
  const accepted: string[] = [];
  const reconcile = createReconcile({
    provider: o.provider ?? provider,
    state,
    links,
    // bob brought his own account (REGISTRATION=byo); alice's number is on the gateway's.
    ...(o.byo ? { accountOf: async (jid: string) => (jid === BOB ? OWN : undefined) } : {}),
    messages,
    accept: async (sms) => {
      accepted.push(sms.providerId);
      return inbound.accept(sms);
    },
    applyStatus: (u) => inbound.applyStatus(u),
    settings: { lookbackMs: 24 * HOUR, horizonMs: 7 * 24 * HOUR, intervalMs: 5 * MIN },
    log: quiet,
    now,
  });
  const chats = () => delivery.toXmpp().filter((i): i is Extract<XmppDelivery, { kind: "chat" }> => i.kind === "chat");
  return { clock, links, messages, delivery, inbound, provider, state, reconcile, accepted, chats };
}

function done(res: ReconcileOutcome): ReconcileReport {
  assert.equal(res.outcome, "done", JSON.stringify(res));
  return (res as Extract<ReconcileOutcome, { outcome: "done" }>).report;
}

let sids = 0;
const sid = () => `SM${String(++sids).padStart(32, "0")}`;

test("texts the gateway never received are taken in once, with the time they reached the provider; unlinked numbers are skipped", async () => {
  const t = setup();
  const at = t.clock.now - 2 * HOUR;
  const a = sid();
  const b = sid();
  t.provider.receive({ providerId: a, from: THEM, to: ALICE_NUMBER, body: "while you were down", media: [], sentAt: at });
  t.provider.receive({ providerId: b, from: THEM, to: "+1 555 000 2222", body: "national format", media: [], sentAt: at + MIN });
  t.provider.receive({ providerId: sid(), from: THEM, to: "+15559990000", body: "nobody's", media: [], sentAt: at });
  t.provider.receive({ providerId: sid(), from: THEM, to: ALICE_NUMBER, body: "too old", media: [], sentAt: t.clock.now - 25 * HOUR });

  const r = done(await t.reconcile.run({ kind: "start" }));
  assert.deepEqual(inboundTotals(r), { listed: 3, ingested: 2, duplicate: 0, unrouted: 1, incomplete: 0 });
  assert.deepEqual(t.provider.listings, [{ since: t.clock.now - 24 * HOUR - RECONCILE_TIMING.overlapMs }], "first run: RECONCILE_LOOKBACK back (and the overlap), on the main account");
  assert.deepEqual(
    t.chats().map((c) => [c.id, c.to, c.from, c.body, c.acceptedAt]),
    [
      [b, BOB, `${THEM}@${DOMAIN}`, "national format", at + MIN],
      [a, ALICE, `${THEM}@${DOMAIN}`, "while you were down", at],
    ],
    "newest first as listed, each with its arrival time (XEP-0203 when delivered)",
  );
  assert.equal(await t.state.cursor(MAIN), t.clock.now, "the cursor moved to the run's start");
  assert.deepEqual(r.errors, []);
});

test("a second run, and texts that came by webhook, are duplicates: nothing is queued twice", async () => {
  const t = setup();
  const webhook = sid();
  const lost = sid();
  // One text came by webhook; the other never did.
  await t.inbound.accept({ providerId: webhook, account: MAIN, from: THEM, to: ALICE_NUMBER, body: "by webhook", media: [] });
  t.provider.receive({ providerId: webhook, from: THEM, to: ALICE_NUMBER, body: "by webhook", media: [], sentAt: t.clock.now - 3 * MIN });
  t.provider.receive({ providerId: lost, from: THEM, to: ALICE_NUMBER, body: "lost", media: [], sentAt: t.clock.now - 2 * MIN });
  const first = done(await t.reconcile.run({ kind: "start" }));
  assert.deepEqual([inboundTotals(first).ingested, inboundTotals(first).duplicate], [1, 1]);
  const cursor = t.clock.now;
  t.clock.now += 6 * MIN;
  const second = done(await t.reconcile.run({ kind: "periodic" }));
  assert.deepEqual([inboundTotals(second).ingested, inboundTotals(second).duplicate], [0, 2]);
  assert.equal(t.provider.listings[1]?.since, cursor - RECONCILE_TIMING.overlapMs, "from the cursor, less the overlap");
  assert.deepEqual(
    t.chats().map((c) => c.body),
    ["by webhook", "lost"],
  );
  // An operator's run far back changes nothing either.
  const manual = done(await t.reconcile.run({ kind: "manual", since: t.clock.now - 3 * 24 * HOUR }));
  assert.equal(inboundTotals(manual).ingested, 0);
  assert.equal(t.chats().length, 2);
});

test("users' own accounts: each is listed with its own cursor, and only texts to the numbers registered under it count", async () => {
  const t = setup({ byo: true });
  t.provider.receive({
    providerId: sid(),
    account: OWN,
    from: THEM,
    to: BOB_NUMBER,
    body: "to bob on his account",
    media: [{ url: "https://api.twilio.com/x", contentType: "image/png" }],
    sentAt: t.clock.now - HOUR,
  });
  // Another user's number named on bob's account: a webhook signed by it would be refused too.
  t.provider.receive({ providerId: sid(), account: OWN, from: THEM, to: ALICE_NUMBER, body: "forged", media: [], sentAt: t.clock.now - HOUR });
  t.provider.receive({ providerId: sid(), from: THEM, to: ALICE_NUMBER, body: "to alice", media: [], sentAt: t.clock.now - HOUR });
  const r = done(await t.reconcile.run({ kind: "start" }));
  assert.deepEqual(
    r.accounts.map((a) => [a.account, a.ingested, a.unrouted]),
    [
      [MAIN, 1, 0],
      [OWN, 1, 1],
    ],
  );
  const first = t.clock.now - 24 * HOUR - RECONCILE_TIMING.overlapMs;
  assert.deepEqual(t.provider.listings, [{ since: first }, { account: OWN, since: first }]);
  assert.deepEqual(
    t.chats().map((c) => c.body),
    ["to alice", "to bob on his account"],
  );
  const bobs = t.chats().find((c) => c.to === BOB);
  assert.deepEqual(bobs?.media, [{ url: "https://api.twilio.com/x", contentType: "image/png", account: OWN }], "media carry the account: only its own credentials fetch them");
  assert.deepEqual([t.state.cursors.get(MAIN), t.state.cursors.get(OWN)], [t.clock.now, t.clock.now]);
});

test("a text from before its number was linked is not its user's: a number linked later does not bring older texts", async () => {
  const t = setup();
  const NEW = "+15550003333";
  done(await t.reconcile.run({ kind: "start" }));
  const firstRun = t.clock.now;
  // Texted while nobody had the number (its webhook dropped it), before that run: then carol gets it.
  t.provider.receive({ providerId: sid(), from: THEM, to: NEW, body: "for nobody", media: [], sentAt: firstRun - 5 * MIN });
  // Within the clocks' margin of that run (the provider's times have whole seconds): counted as after it.
  t.provider.receive({ providerId: sid(), from: THEM, to: NEW, body: "about then", media: [], sentAt: firstRun - 30_000 });
  t.clock.now += MIN;
  await t.links.link("carol@example.com", NEW);
  t.clock.now += 5 * MIN;
  const r = done(await t.reconcile.run({ kind: "periodic" }));
  assert.deepEqual([inboundTotals(r).ingested, inboundTotals(r).unrouted], [1, 1]);
  // What reaches her number after the last run before her link is hers, also when its webhook failed.
  t.provider.receive({ providerId: sid(), from: THEM, to: NEW, body: "for carol", media: [], sentAt: t.clock.now - MIN });
  t.clock.now += 5 * MIN;
  const next = done(await t.reconcile.run({ kind: "manual", since: t.clock.now - 3 * HOUR }));
  assert.deepEqual([inboundTotals(next).ingested, inboundTotals(next).duplicate, inboundTotals(next).unrouted], [1, 1, 1], "not even an operator's run brings the older one");
  assert.deepEqual(
    t.chats().map((c) => [c.to, c.body]),
    [
      ["carol@example.com", "about then"],
      ["carol@example.com", "for carol"],
    ],
  );
  // Passed on to dave: carol's text stays hers (a repeat), and nothing older reaches him.
  await t.links.unlink("carol@example.com");
  await t.links.link("dave@example.com", NEW);
  t.clock.now += 5 * MIN;
  const passed = done(await t.reconcile.run({ kind: "manual", since: t.clock.now - 3 * HOUR }));
  assert.deepEqual([inboundTotals(passed).ingested, inboundTotals(passed).duplicate, inboundTotals(passed).unrouted], [0, 0, 3]);
});

test("an operator's since never narrows the window: the cursor only moves past what was read", async () => {
  const t = setup();
  done(await t.reconcile.run({ kind: "start" }));
  const cursor = t.clock.now;
  t.clock.now += 2 * HOUR;
  const r = done(await t.reconcile.run({ kind: "manual", since: t.clock.now - 10 * MIN }));
  assert.equal(r.accounts[0]?.since, cursor - RECONCILE_TIMING.overlapMs, "from the cursor, not 10 minutes back");
  const far = done(await t.reconcile.run({ kind: "manual", since: t.clock.now - 5 * HOUR }));
  assert.equal(far.accounts[0]?.since, t.clock.now - 5 * HOUR);
});

test("a listing that fails half-way keeps the cursor; the next run takes in the rest, nothing twice", async () => {
  const t = setup();
  for (let i = 0; i < 4; i++) t.provider.receive({ providerId: sid(), from: THEM, to: ALICE_NUMBER, body: `text ${i}`, media: [], sentAt: t.clock.now - (10 - i) * MIN });
  t.provider.failListing(2);
  const r = done(await t.reconcile.run({ kind: "start" }));
  assert.equal(inboundTotals(r).ingested, 2);
  assert.match(r.errors[0] ?? "", /unreachable/);
  assert.equal(r.accounts[0]?.error, "the provider is unreachable");
  assert.equal(await t.state.cursor(MAIN), undefined, "not moved");
  t.clock.now += MIN;
  const again = done(await t.reconcile.run({ kind: "start" }));
  assert.deepEqual([inboundTotals(again).ingested, inboundTotals(again).duplicate, again.errors.length], [2, 2, 0]);
  assert.deepEqual(
    t
      .chats()
      .map((c) => c.body)
      .sort(),
    ["text 0", "text 1", "text 2", "text 3"],
  );
});

test("a text the provider is still receiving waits, and holds the cursor back to it", async () => {
  const t = setup();
  const mms = sid();
  t.provider.receive({ providerId: mms, from: THEM, to: ALICE_NUMBER, body: "", media: [], sentAt: t.clock.now - 3 * MIN, complete: false });
  const r = done(await t.reconcile.run({ kind: "start" }));
  assert.deepEqual([inboundTotals(r).incomplete, t.chats().length], [1, 0]);
  assert.equal(await t.state.cursor(MAIN), t.clock.now - 3 * MIN);
  t.provider.receive({ providerId: mms, from: THEM, to: ALICE_NUMBER, body: "now complete", media: [], sentAt: t.clock.now - 3 * MIN });
  t.clock.now += 6 * MIN;
  done(await t.reconcile.run({ kind: "periodic" }));
  assert.deepEqual(
    t.chats().map((c) => c.body),
    ["now complete"],
  );
});

test("one run at a time; a periodic run right after another is skipped; a lost lock stops a run", async () => {
  const t = setup();
  const other = await t.state.lock(60_000);
  assert.deepEqual(await t.reconcile.run({ kind: "start" }), { outcome: "busy" });
  await other!.release();
  done(await t.reconcile.run({ kind: "start" }));
  t.clock.now += 2 * MIN;
  assert.equal((await t.reconcile.run({ kind: "periodic" })).outcome, "skipped");
  assert.equal((await t.reconcile.run({ kind: "manual" })).outcome, "done", "an operator's run is never skipped");
  t.clock.now += 5 * MIN;
  assert.equal((await t.reconcile.run({ kind: "periodic" })).outcome, "done");

  // The lock lapses (this instance stalled) while the listing goes on: the run stops there.
  const lapsing = setup();
  for (const x of ["a", "b"]) lapsing.provider.receive({ providerId: sid(), from: THEM, to: ALICE_NUMBER, body: x, media: [], sentAt: lapsing.clock.now - MIN });
  const accept = lapsing.inbound.accept;
  lapsing.inbound.accept = async (sms) => (lapsing.state.expireLock(), accept(sms));
  const r = done(await lapsing.reconcile.run({ kind: "start" }));
  assert.match(r.errors.join(), /lock was lost/);
  assert.equal(await lapsing.state.cursor(MAIN), undefined);
});

test("since: too far back for the repeat check, or in the future, is refused saying why", async () => {
  const t = setup();
  const refused = async (since: number) => {
    try {
      await t.reconcile.run({ kind: "manual", since });
      return undefined;
    } catch (err) {
      assert.ok(isGatewayError(err) && err.code === "bad_request" && err.field === "since", String(err));
      return err.userText;
    }
  };
  assert.match((await refused(t.clock.now - 8 * 24 * HOUR)) ?? "", /at most \d+ h ago.*DEDUPE_TTL.*XMPP_DELIVERY_DEADLINE_MS/);
  assert.match((await refused(t.clock.now + HOUR)) ?? "", /future/);
  assert.equal(await refused(t.clock.now - 6 * 24 * HOUR), undefined, "inside the horizon");
  assert.equal(t.provider.listings.length, 1, "only the run inside the horizon listed");
});

/** An SMS alice sent at `createdAt`, handed to the provider as `providerId` (status `queued`). */
async function sent(t: ReturnType<typeof setup>, providerId: string, createdAt: number, account = MAIN) {
  const id = `01OUT${providerId.slice(-21)}`;
  await t.messages.create(newOutgoingRecord({ id, channel: "sms", jid: `${ALICE}/phone`, stanzaId: `st-${id}`, contactJid: `${THEM}@${DOMAIN}`, receiptRequested: true, account, now: createdAt }));
  const at = t.clock.now;
  t.clock.now = createdAt;
  await t.inbound.applyStatus({ id, providerId, status: "queued" });
  t.clock.now = at;
  return id;
}

test("a final status that never came is fetched and applied: one receipt, one error reply; a status callback that came meanwhile wins", async () => {
  const t = setup();
  const [d, u, c] = [sid(), sid(), sid()];
  const delivered = await sent(t, d, t.clock.now - 10 * MIN);
  const undelivered = await sent(t, u, t.clock.now - 10 * MIN);
  const raced = await sent(t, c, t.clock.now - 10 * MIN);
  t.provider.setStatus(d, "delivered");
  t.provider.setStatus(u, "undelivered", 30003);
  t.provider.setStatus(c, "delivered");
  await t.inbound.applyStatus({ id: raced, providerId: c, status: "failed", errorCode: 30005 });
  const r = done(await t.reconcile.run({ kind: "start" }));
  assert.deepEqual(r.outbound, { checked: 2, applied: 2, unchanged: 0, pending: 0, notFound: 0, gaveUp: 0, failed: 0 }, "the raced one left the list with its callback");
  const items = t.delivery.toXmpp();
  assert.deepEqual(
    items.filter((i) => i.kind === "receipt").map((i) => (i.kind === "receipt" ? i.receiptFor : "")),
    [`st-${delivered}`],
  );
  const errors = items.filter((i): i is Extract<XmppDelivery, { kind: "error" }> => i.kind === "error").map((i) => [i.replyTo, i.condition]);
  assert.deepEqual(errors, [
    [`st-${raced}`, "item-not-found"],
    [`st-${undelivered}`, "recipient-unavailable"],
  ]);
  assert.deepEqual(await t.messages.dueStatusChecks(Infinity, 10), []);
  const again = done(await t.reconcile.run({ kind: "manual" }));
  assert.equal(again.outbound.checked, 0, "nothing left to ask");
  assert.equal(t.delivery.toXmpp().length, items.length, "no second receipt or error");
});

test("status checks: a young message waits for its callback (unless an operator asks), a non-final one is asked again later, an unknown one and a two-day-old one are given up", async () => {
  const t = setup();
  const [young, slow, gone, old] = [sid(), sid(), sid(), sid()];
  const youngId = await sent(t, young, t.clock.now - MIN);
  const slowId = await sent(t, slow, t.clock.now - 20 * MIN);
  await sent(t, gone, t.clock.now - 20 * MIN);
  await sent(t, old, t.clock.now - 49 * HOUR);
  t.provider.setStatus(young, "delivered");
  t.provider.setStatus(slow, "sent");
  const r = done(await t.reconcile.run({ kind: "start" }));
  assert.deepEqual(r.outbound, { checked: 2, applied: 0, unchanged: 0, pending: 1, notFound: 1, gaveUp: 1, failed: 0 });
  assert.deepEqual(
    t.provider.fetches.map((f) => f.providerId),
    [slow, gone],
    "the young one was not asked",
  );
  assert.equal((await t.messages.get(slowId))?.status, "sent", "a status short of final still moves forward");
  assert.deepEqual((await t.messages.dueStatusChecks(Infinity, 10)).sort(), [youngId, slowId].sort());
  assert.deepEqual(await t.messages.dueStatusChecks(t.clock.now + 20 * MIN - 1, 10), [youngId], "the slow one: after as long again as it waited");
  // An operator's run asks about everything awaiting, young or not.
  const manual = done(await t.reconcile.run({ kind: "manual" }));
  assert.equal(manual.outbound.applied, 1);
  assert.equal(t.delivery.toXmpp().filter((i) => i.kind === "receipt").length, 1);
});

test("status fetches failing in a row end the checks of a run; they are asked again later", async () => {
  const t = setup();
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) ids.push(await sent(t, sid(), t.clock.now - 30 * MIN));
  t.provider.failFetches(100);
  const r = done(await t.reconcile.run({ kind: "start" }));
  assert.equal(r.outbound.failed, RECONCILE_TIMING.maxFailuresInARow);
  assert.match(r.errors.join(), /status checks stopped after 5 failures in a row/);
  assert.equal((await t.messages.dueStatusChecks(t.clock.now, 10)).length, 2, "the two not tried are still due; the failed ones later");
  assert.equal((await t.messages.dueStatusChecks(Infinity, 10)).length, 7);
});

test("the sandbox's kept list reconciles like Twilio's: what its route accepted is a duplicate, what it only kept is taken in", async () => {
  const sandbox = createSandboxProvider({ onStatus: () => undefined });
  const t = setup({ provider: sandbox, now: Date.now() });
  // As POST /sandbox/sms does: accepted, then kept with the provider id it was accepted with.
  const accepted = await t.inbound.accept({ providerId: "SMsandbox1", from: THEM, to: ALICE_NUMBER, body: "injected", media: [] });
  sandbox.recordInbound({ id: accepted.id, providerId: "SMsandbox1", from: THEM, to: ALICE_NUMBER, body: "injected" });
  sandbox.recordInbound({ id: "SMsandbox2", from: THEM, to: ALICE_NUMBER, body: "only kept", media: ["https://example.com/a.png"] });
  const r = done(await t.reconcile.run({ kind: "start" }));
  assert.deepEqual(
    r.accounts.map((a) => [a.account, a.ingested, a.duplicate]),
    [["sandbox", 1, 1]],
  );
  assert.deepEqual(
    t.chats().map((c) => [c.body, c.media]),
    [
      ["injected", undefined],
      ["only kept", [{ url: "https://example.com/a.png" }]],
    ],
  );
  const { providerId } = await sandbox.send({ id: "01SB", from: ALICE_NUMBER, to: THEM, body: "hi", mediaUrls: [] });
  assert.deepEqual(await sandbox.fetchStatus({ providerId }), { status: "queued" });
  assert.equal(await sandbox.fetchStatus({ providerId: "SBnone" }), undefined);
  await sandbox.close();
});

test("a message sent with a user's own account that is no longer registered is not asked about again, and does not stop the others", async () => {
  const t = setup();
  t.provider.dropAccount(OWN);
  const orphans: string[] = [];
  for (let i = 0; i < 6; i++) orphans.push(await sent(t, sid(), t.clock.now - 30 * MIN, OWN));
  const ok = sid();
  await sent(t, ok, t.clock.now - 20 * MIN);
  t.provider.setStatus(ok, "delivered");
  const r = done(await t.reconcile.run({ kind: "start" }));
  assert.deepEqual([r.outbound.failed, r.outbound.applied, r.errors], [6, 1, []]);
  assert.deepEqual(await t.messages.dueStatusChecks(Infinity, 10), []);
});
