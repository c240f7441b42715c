// What every MessageStore adapter must do (core/ports.ts), as cases run against each one: the
// in-memory store in test/unit/memory-adapters.test.ts, the Redis one in
// test/integration/redis-stores.test.ts. The flows' unit tests run on the memory store; this keeps it
// honest to the real one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { newOutgoingRecord, type MessageRecord } from "../../../src/core/model/message.js";
import type { MessageStore } from "../../../src/core/ports.js";

const ACCOUNT = `AC${"1".repeat(32)}`;
const OTHER = `AC${"2".repeat(32)}`;

let n = 0;
/** A record as core/flows/xmpp-out.ts makes one: pending, with a stanza id and the account it goes out with. */
export function outgoing(extra: Partial<MessageRecord> = {}): MessageRecord {
  n++;
  const record = newOutgoingRecord({
    id: `01CONTRACT${String(n).padStart(16, "0")}`,
    channel: "sms",
    jid: "alice@example.com/phone",
    stanzaId: `s${n}`,
    contactJid: "+15552223333@sms.example.com",
    receiptRequested: true,
    account: ACCOUNT,
    now: 1_000,
  });
  return { ...record, ...extra };
}

/** Registers the contract's tests; `fresh` gives an empty store per test. */
export function messageStoreContract(name: string, fresh: () => Promise<MessageStore>): void {
  test(`${name}: a record reads back as created, without fields it did not have`, async () => {
    const s = await fresh();
    const sms = outgoing();
    await s.create(sms);
    assert.deepEqual(await s.get(sms.id), sms);
    const hook = outgoing({ channel: "webhook", receiptRequested: false });
    delete hook.account;
    delete hook.stanzaId;
    await s.create(hook);
    assert.deepEqual(await s.get(hook.id), hook);
    assert.equal(await s.get("01NOSUCHRECORD000000000000"), undefined);
  });

  test(`${name}: statuses move forward only; a final one never changes; the error code comes with a move`, async () => {
    const s = await fresh();
    const r = outgoing();
    await s.create(r);
    assert.equal(await s.advance("01NOSUCHRECORD000000000000", "sent"), undefined);
    const sent = await s.advance(r.id, "sent");
    assert.equal(sent?.changed, true);
    assert.equal(sent?.record.status, "sent");
    assert.ok(sent!.record.updatedAt >= r.updatedAt);
    assert.deepEqual((await s.advance(r.id, "queued", { errorCode: 1 }))?.changed, false, "backwards");
    assert.equal((await s.get(r.id))?.errorCode, undefined, "no move, no error code");
    assert.equal((await s.advance(r.id, "unknown"))?.changed, false, "unknown ranks below sent");
    const failed = await s.advance(r.id, "failed", { errorCode: 30003 });
    assert.deepEqual([failed?.changed, failed?.record.status, failed?.record.errorCode], [true, "failed", 30003]);
    assert.equal((await s.advance(r.id, "delivered"))?.changed, false, "final");
    assert.equal((await s.get(r.id))?.status, "failed");
  });

  test(`${name}: the first provider id recorded is the message's, and maps back to it`, async () => {
    const s = await fresh();
    const r = outgoing();
    await s.create(r);
    await s.advance(r.id, "queued", { providerId: "SMfirst" });
    const again = await s.advance(r.id, "sent", { providerId: "SMsecond" });
    assert.equal(again?.record.providerId, "SMfirst");
    assert.equal(again?.record.status, "sent");
    assert.equal(await s.idForProviderId("SMfirst"), r.id);
    assert.equal(await s.idForProviderId("SMsecond"), undefined);
  });

  test(`${name}: a status callback counts only from the sending account and for its provider id`, async () => {
    const s = await fresh();
    const r = outgoing();
    await s.create(r);
    await s.advance(r.id, "queued", { providerId: "SM1" });
    assert.deepEqual(await s.callback("01NOSUCHRECORD000000000000", { status: "sent", providerId: "SM1", account: ACCOUNT }), { outcome: "unknown" });
    assert.deepEqual(await s.callback(r.id, { status: "delivered", providerId: "SM1", account: OTHER }), { outcome: "refused", why: "account" });
    assert.deepEqual(await s.callback(r.id, { status: "delivered", providerId: "SM1" }), { outcome: "refused", why: "account" }, "unsigned, for a message sent with an account");
    assert.deepEqual(await s.callback(r.id, { status: "delivered", providerId: "SM2", account: ACCOUNT }), { outcome: "refused", why: "provider-id" });
    assert.equal((await s.get(r.id))?.status, "queued", "nothing refused changed it");
    const sent = await s.callback(r.id, { status: "sent", providerId: "SM1", account: ACCOUNT });
    assert.ok(sent.outcome === "applied" && sent.changed && sent.record.status === "sent");
    const late = await s.callback(r.id, { status: "queued", providerId: "SM1", account: ACCOUNT });
    assert.ok(late.outcome === "applied" && !late.changed && late.record.status === "sent", "late and backwards: applied, unchanged");
    const failed = await s.callback(r.id, { status: "undelivered", providerId: "SM1", account: ACCOUNT, errorCode: 30005 });
    assert.ok(failed.outcome === "applied" && failed.changed && failed.record.errorCode === 30005);
  });

  test(`${name}: a record without an account (the sandbox, older records) takes any signer with its provider id`, async () => {
    const s = await fresh();
    const r = outgoing();
    delete r.account;
    await s.create(r);
    await s.advance(r.id, "queued", { providerId: "SMs" });
    const res = await s.callback(r.id, { status: "delivered", providerId: "SMs" });
    assert.ok(res.outcome === "applied" && res.changed);
    const other = outgoing();
    delete other.account;
    await s.create(other);
    await s.advance(other.id, "queued", { providerId: "SMt" });
    assert.ok((await s.callback(other.id, { status: "sent", providerId: "SMt", account: OTHER })).outcome === "applied");
  });

  test(`${name}: a callback before the create's answer is held, and counts once advance records the same provider id`, async () => {
    const s = await fresh();
    const r = outgoing();
    await s.create(r);
    assert.deepEqual(await s.callback(r.id, { status: "sent", providerId: "SMe", account: ACCOUNT }), { outcome: "held" });
    assert.deepEqual(await s.callback(r.id, { status: "delivered", providerId: "SMe", account: ACCOUNT }), { outcome: "held" });
    assert.deepEqual(await s.callback(r.id, { status: "sending", providerId: "SMe", account: ACCOUNT }), { outcome: "held" }, "lower: the highest stays held");
    assert.deepEqual(await s.callback(r.id, { status: "failed", providerId: "SMforged", account: ACCOUNT, errorCode: 30007 }), { outcome: "held" });
    assert.equal((await s.get(r.id))?.status, "pending", "held changes nothing yet");
    const res = await s.advance(r.id, "queued", { providerId: "SMe" });
    assert.deepEqual([res?.changed, res?.record.status, res?.record.providerId, res?.record.errorCode], [true, "delivered", "SMe", undefined]);
    // The other held one named another message: dropped, never applied.
    assert.deepEqual(await s.callback(r.id, { status: "failed", providerId: "SMforged", account: ACCOUNT }), { outcome: "refused", why: "provider-id" });
    assert.equal((await s.get(r.id))?.status, "delivered");
  });

  test(`${name}: a held callback of a lower rank than the create's answer does not win; its error code comes with it when it does`, async () => {
    const s = await fresh();
    const a = outgoing();
    await s.create(a);
    await s.callback(a.id, { status: "queued", providerId: "SMa", account: ACCOUNT });
    assert.equal((await s.advance(a.id, "sent", { providerId: "SMa" }))?.record.status, "sent");
    const b = outgoing();
    await s.create(b);
    await s.callback(b.id, { status: "undelivered", providerId: "SMb", account: ACCOUNT, errorCode: 30003 });
    const res = await s.advance(b.id, "queued", { providerId: "SMb" });
    assert.deepEqual([res?.record.status, res?.record.errorCode], ["undelivered", 30003]);
  });

  test(`${name}: held callbacks are bounded per record: past the bound a new provider id is not kept`, async () => {
    const s = await fresh();
    const r = outgoing();
    await s.create(r);
    for (let i = 0; i < 50; i++) assert.deepEqual(await s.callback(r.id, { status: "delivered", providerId: `SMx${i}`, account: ACCOUNT }), { outcome: "held" });
    assert.equal((await s.advance(r.id, "queued", { providerId: "SMx49" }))?.record.status, "queued", "the 50th was not kept");
    const first = outgoing();
    await s.create(first);
    for (let i = 0; i < 50; i++) await s.callback(first.id, { status: "delivered", providerId: `SMy${i}`, account: ACCOUNT });
    assert.equal((await s.advance(first.id, "queued", { providerId: "SMy0" }))?.record.status, "delivered", "the first was kept");
  });

  test(`${name}: markOnce is true once per event, and never makes a record`, async () => {
    const s = await fresh();
    const r = outgoing();
    await s.create(r);
    assert.equal(await s.markOnce(r.id, "receipt"), true);
    assert.equal(await s.markOnce(r.id, "receipt"), false);
    assert.equal(await s.markOnce(r.id, "error"), true);
    assert.equal(await s.markOnce("01NOSUCHRECORD000000000000", "error"), false);
    assert.equal(await s.get("01NOSUCHRECORD000000000000"), undefined);
    assert.deepEqual(await s.get(r.id), r, "marks are not part of the record");
  });

  test(`${name}: startSending begins a pending message once; attempts are a compare-and-set on their count`, async () => {
    const s = await fresh();
    assert.equal(await s.startSending("01NOSUCHRECORD000000000000"), undefined);
    const r = outgoing();
    await s.create(r);
    const first = await s.startSending(r.id);
    assert.ok(first && "begun" in first);
    assert.deepEqual([first.begun.state, first.begun.count], ["inflight", 1]);
    assert.equal(typeof first.begun.firstAt, "number");
    const again = await s.startSending(r.id);
    assert.ok(again && "record" in again, "in flight: left to the caller");
    assert.deepEqual(again.attempt, first.begun);
    assert.deepEqual(again.record, r);
    await s.clearAttempt(r.id);
    const second = await s.startSending(r.id);
    assert.ok(second && "begun" in second);
    assert.deepEqual(second.begun, { state: "inflight", count: 2, firstAt: first.begun.firstAt }, "the first try's time stays");
    assert.equal(await s.beginAttempt(r.id, 1), undefined, "another worker moved it");
    assert.deepEqual(await s.beginAttempt(r.id, 2), { state: "inflight", count: 3, firstAt: first.begun.firstAt });
    assert.equal(await s.beginAttempt("01NOSUCHRECORD000000000000", 0), undefined);
    await s.clearAttempt("01NOSUCHRECORD000000000000");
    assert.equal(await s.get("01NOSUCHRECORD000000000000"), undefined, "clearAttempt never makes a record");
  });

  test(`${name}: startSending leaves a message with a provider id, or past pending, as it is`, async () => {
    const s = await fresh();
    const a = outgoing();
    await s.create(a);
    await s.advance(a.id, "queued", { providerId: "SMq" });
    const withSid = await s.startSending(a.id);
    assert.ok(withSid && "record" in withSid);
    assert.deepEqual([withSid.record.providerId, withSid.attempt], ["SMq", { state: "none", count: 0 }]);
    const b = outgoing();
    await s.create(b);
    await s.advance(b.id, "unknown");
    const unknown = await s.startSending(b.id);
    assert.ok(unknown && "record" in unknown && unknown.record.status === "unknown");
  });

  test(`${name}: a message handed to the provider awaits its final status until it comes, or until it is unscheduled`, async () => {
    const s = await fresh();
    const [a, b, c] = [outgoing(), outgoing(), outgoing()];
    for (const r of [a, b, c]) await s.create(r);
    assert.deepEqual(await s.dueStatusChecks(Infinity, 10), [], "no provider id yet: nothing to ask");
    const t0 = Date.now();
    await s.advance(a.id, "queued", { providerId: "SMa1" });
    await s.advance(b.id, "sent", { providerId: "SMb1" });
    await s.advance(c.id, "delivered", { providerId: "SMc1" });
    const t1 = Date.now();
    assert.deepEqual((await s.dueStatusChecks(t1, 10)).sort(), [a.id, b.id].sort(), "due at once; a final one never awaits");
    assert.deepEqual(await s.dueStatusChecks(t0 - 1, 10), [], "not due before its provider id was recorded");
    assert.equal((await s.dueStatusChecks(t1, 1)).length, 1, "at most `limit`");
    await s.scheduleStatusCheck(a.id, t1 + 60_000);
    assert.deepEqual(await s.dueStatusChecks(t1, 10), [b.id], "rescheduled later");
    assert.deepEqual(await s.dueStatusChecks(t1 + 60_000, 10), [b.id, a.id], "earliest first");
    await s.callback(b.id, { status: "undelivered", providerId: "SMb1", account: ACCOUNT, errorCode: 30003 });
    assert.deepEqual(await s.dueStatusChecks(Infinity, 10), [a.id], "a final status from a callback ends the wait");
    await s.scheduleStatusCheck(b.id, t1);
    assert.deepEqual(await s.dueStatusChecks(Infinity, 10), [a.id], "a message that left is not put back");
    await s.advance(a.id, "sent");
    assert.deepEqual(await s.dueStatusChecks(Infinity, 10), [a.id], "a status short of final keeps it");
    await s.scheduleStatusCheck(a.id, undefined);
    assert.deepEqual(await s.dueStatusChecks(Infinity, 10), [], "unscheduled: given up");
  });
}
