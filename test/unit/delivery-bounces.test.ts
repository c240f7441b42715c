// The counting rules of bounces toward XMPP (core/delivery/bounces.ts): a bounce counts once, for the write it
// answered; a bounced delivery's conversation waits a growing backoff; the last allowed bounce makes a
// dead letter.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bounceBackoff, createBounceLedger, createBounceRetries } from "../../src/core/delivery/bounces.js";

test("a bounce is reported by the barriers that cover its write, and forgotten when the delivery is written again", () => {
  const ledger = createBounceLedger();
  ledger.written("SM1", "chat:SM1");
  ledger.written("SM2", "chat:SM2");
  const mark = ledger.mark();
  assert.equal(ledger.bounced("SM1", "service-unavailable"), true);
  assert.deepEqual([...ledger.covered(mark)], [["chat:SM1", "service-unavailable"]]);
  // Rewritten (the retry after the backoff): the old bounce does not count against the new write.
  ledger.written("SM1", "chat:SM1");
  assert.deepEqual([...ledger.covered(ledger.mark())], [], "the retry went through: no bounce reported");
});

test("a bounce for a stanza no barrier awaits any more counts for nothing", () => {
  const ledger = createBounceLedger();
  ledger.written("SM1", "chat:SM1");
  ledger.covered(ledger.mark()); // proven
  assert.equal(ledger.bounced("SM1", "service-unavailable"), false, "late: not recorded");
  assert.equal(ledger.bounced("unknown", "service-unavailable"), false, "never ours");
  ledger.written("SM1", "chat:SM1");
  assert.deepEqual([...ledger.covered(ledger.mark())], []);
});

test("a barrier sent before a write does not report that write's bounce", () => {
  const ledger = createBounceLedger();
  ledger.written("SM1", "chat:SM1");
  const early = ledger.mark();
  ledger.written("SM2", "chat:SM2");
  ledger.bounced("SM2", "item-not-found");
  assert.deepEqual([...ledger.covered(early)], [], "SM2 was written after the early barrier");
  assert.deepEqual([...ledger.covered(ledger.mark())], [["chat:SM2", "item-not-found"]]);
});

test("a repeated bounce of the same write is one bounce", () => {
  const ledger = createBounceLedger();
  ledger.written("SM1", "chat:SM1");
  ledger.bounced("SM1", "service-unavailable");
  ledger.bounced("SM1", "service-unavailable");
  const retries = createBounceRetries({ maxBounces: 3, baseMs: 1000, maxMs: 60_000 });
  const reported = ledger.covered(ledger.mark());
  assert.equal(reported.size, 1);
  const verdict = retries.bounced("1-0", "alice@example.com|+15552223333@sms.example.com", 0);
  assert.deepEqual(verdict, { deadLetter: false, bounces: 1, retryAt: 1000 });
});

test("old unclaimed bounces are pruned by age", () => {
  const ledger = createBounceLedger();
  ledger.written("SM1", "chat:SM1");
  const mark = ledger.mark();
  ledger.bounced("SM1", "service-unavailable", 0);
  assert.equal(ledger.covered(mark, 1000).size, 1);
  assert.equal(ledger.covered(mark, 10 * 60_000).size, 0);
});

test("the backoff grows from seconds to minutes and is capped", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => bounceBackoff(n, 5000, 600_000)),
    [5000, 15_000, 45_000, 135_000, 405_000],
  );
  assert.equal(bounceBackoff(6, 5000, 600_000), 600_000);
  assert.equal(bounceBackoff(1000, 5000, 600_000), 600_000, "no overflow");
});

test("a bounced delivery holds its conversation until the backoff ends; others go on", () => {
  const r = createBounceRetries({ maxBounces: 5, baseMs: 5000, maxMs: 600_000 });
  const conv = "alice@example.com|+15552223333@sms.example.com";
  const other = "bob@example.com|+15552223333@sms.example.com";
  const v = r.bounced("1-0", conv, 10_000);
  assert.deepEqual(v, { deadLetter: false, bounces: 1, retryAt: 15_000 });
  assert.equal(r.isHeld(conv, 14_999), true);
  assert.equal(r.isHeld(other, 14_999), false);
  assert.equal(r.nextRelease(), 15_000);
  assert.equal(r.releaseDue(14_999), false);
  assert.equal(r.releaseDue(15_000), true, "the wait is over: read the pending entries again");
  assert.equal(r.isHeld(conv, 15_000), false);
  assert.equal(r.nextRelease(), undefined);
  assert.equal(r.releaseDue(20_000), false, "released once");
});

test("the bounces of one entry count up to maxBounces, then it is a dead letter; delivery forgets the count", () => {
  const r = createBounceRetries({ maxBounces: 3, baseMs: 1000, maxMs: 60_000 });
  const conv = "a|b";
  assert.deepEqual(r.bounced("1-0", conv, 0), { deadLetter: false, bounces: 1, retryAt: 1000 });
  assert.deepEqual(r.bounced("1-0", conv, 1000), { deadLetter: false, bounces: 2, retryAt: 4000 });
  assert.equal(r.count("1-0"), 2);
  assert.deepEqual(r.bounced("1-0", conv, 4000), { deadLetter: true, bounces: 3 });
  assert.equal(r.count("1-0"), 0);
  r.bounced("2-0", conv, 0);
  r.forget("2-0");
  assert.equal(r.count("2-0"), 0, "delivered at last: counting starts again if it ever comes back");
});

test("a hold is never shortened by a later, shorter one in the same conversation", () => {
  const r = createBounceRetries({ maxBounces: 9, baseMs: 1000, maxMs: 60_000 });
  r.bounced("1-0", "c", 0);
  r.bounced("1-0", "c", 0); // 3 s
  r.bounced("2-0", "c", 0); // its first: 1 s
  assert.equal(r.nextRelease(), 3000);
});
