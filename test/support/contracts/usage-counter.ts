// What every UsageCounter adapter must do (core/policy/limits.ts): fixed windows per key, refusals with the
// time left, a quota's refused take given back, a breaker's kept. Run against the in-memory counter
// (test/unit/memory-adapters.test.ts) and the Redis one (test/integration/redis-stores.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { UsageCounter } from "../../../src/core/policy/limits.js";

export interface CounterFactory {
  /** A fresh counter with an empty store. */
  make(o: { limit: number; windowS: number; staysTripped?: boolean }): Promise<UsageCounter>;
  /** Lets `ms` pass for the counters (a fake clock moves; a real store waits). */
  pass(ms: number): Promise<void>;
}

export function usageCounterContract(name: string, f: CounterFactory): void {
  test(`${name}: a quota counts per key, refuses past its limit with the window's time left, and gives the refused take back`, async () => {
    const c = await f.make({ limit: 5, windowS: 60 });
    assert.equal(c.limit, 5);
    assert.deepEqual(await c.peek("a"), { used: 0, resetInMs: 0 });
    assert.deepEqual(await c.take("a", 3), { ok: true });
    assert.deepEqual(await c.take("a", 0), { ok: true }, "nothing taken");
    assert.deepEqual(await c.take("b", 5), { ok: true }, "another key");
    const refused = await c.take("a", 3);
    assert.ok(!refused.ok && refused.tripped);
    assert.ok(refused.retryAfterMs > 50_000 && refused.retryAfterMs <= 60_000, String(refused.retryAfterMs));
    const state = await c.peek("a");
    assert.equal(state.used, 3, "given back");
    assert.ok(state.resetInMs > 50_000 && state.resetInMs <= 60_000);
    assert.deepEqual(await c.take("a", 2), { ok: true }, "exactly the limit");
    const again = await c.take("a", 1);
    assert.ok(!again.ok && again.tripped, "a quota is never left over its limit");
  });

  test(`${name}: a breaker stays over its limit once tripped; only the take that tripped it says so`, async () => {
    const c = await f.make({ limit: 4, windowS: 60, staysTripped: true });
    assert.deepEqual(await c.take("g", 4), { ok: true });
    const first = await c.take("g", 2);
    assert.ok(!first.ok && first.tripped);
    assert.equal((await c.peek("g")).used, 6);
    const second = await c.take("g", 1);
    assert.ok(!second.ok && !second.tripped);
    await c.reset("g");
    assert.deepEqual(await c.peek("g"), { used: 0, resetInMs: 0 });
    assert.deepEqual(await c.take("g", 1), { ok: true });
  });

  test(`${name}: give takes back what was counted; a window's end starts afresh`, async () => {
    const c = await f.make({ limit: 3, windowS: 1 });
    await c.take("k", 3);
    await c.give("k", 2);
    assert.equal((await c.peek("k")).used, 1);
    await c.give("k", 0);
    assert.equal((await c.peek("k")).used, 1);
    assert.deepEqual(await c.take("k", 2), { ok: true });
    assert.ok(!(await c.take("k", 1)).ok);
    await f.pass(1100);
    assert.deepEqual(await c.peek("k"), { used: 0, resetInMs: 0 });
    assert.deepEqual(await c.take("k", 3), { ok: true });
  });
}
