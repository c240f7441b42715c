// What every ReconcileState adapter must do (core/ports.ts), as cases run against each one: the
// in-memory state in test/unit/memory-adapters.test.ts, the Redis one in
// test/integration/redis-stores.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ReconcileState } from "../../../src/core/ports.js";

const AC = `AC${"1".repeat(32)}`;
const OTHER = `AC${"2".repeat(32)}`;

export function reconcileStateContract(name: string, fresh: () => Promise<ReconcileState>): void {
  test(`${name}: a cursor per account, moving forward only; the last run's time`, async () => {
    const s = await fresh();
    assert.equal(await s.cursor(AC), undefined);
    await s.advanceCursor(AC, 2_000);
    await s.advanceCursor(AC, 1_000);
    await s.advanceCursor(OTHER, 500);
    assert.deepEqual([await s.cursor(AC), await s.cursor(OTHER)], [2_000, 500]);
    await s.advanceCursor(AC, 3_000);
    assert.equal(await s.cursor(AC), 3_000);
    assert.equal(await s.lastRun(), undefined);
    await s.markRun(42_000);
    assert.equal(await s.lastRun(), 42_000);
  });

  test(`${name}: a number counts as linked to its owner from the first time it is seen so; another owner starts again; unlisted numbers are forgotten`, async () => {
    const s = await fresh();
    const since = async (links: [string, string][], firstSeen: number) =>
      Object.fromEntries(
        await s.linkedSince(
          AC,
          links.map(([number, owner]) => ({ number, owner })),
          firstSeen,
        ),
      );
    assert.deepEqual(
      await since(
        [
          ["+15550001111", "o1"],
          ["+15550002222", "o2"],
        ],
        1_000,
      ),
      { "+15550001111": 1_000, "+15550002222": 1_000 },
    );
    assert.deepEqual(
      await since(
        [
          ["+15550001111", "o1"],
          ["+15550002222", "o3"],
        ],
        2_000,
      ),
      { "+15550001111": 1_000, "+15550002222": 2_000 },
      "o3 took it over",
    );
    assert.deepEqual(await since([["+15550002222", "o3"]], 3_000), { "+15550002222": 2_000 });
    assert.deepEqual(
      await since(
        [
          ["+15550001111", "o1"],
          ["+15550002222", "o3"],
        ],
        4_000,
      ),
      { "+15550001111": 4_000, "+15550002222": 2_000 },
      "forgotten while unlinked",
    );
    assert.deepEqual(Object.fromEntries(await s.linkedSince(OTHER, [{ number: "+15550001111", owner: "o1" }], 5_000)), { "+15550001111": 5_000 }, "per account");
    assert.deepEqual(await since([], 6_000), {});
  });

  test(`${name}: one holder of the lock until it releases it`, async () => {
    const s = await fresh();
    const a = await s.lock(60_000);
    assert.ok(a);
    assert.equal(a.held(), true);
    assert.equal(await s.lock(60_000), undefined, "held by another");
    await a.release();
    assert.equal(a.held(), false);
    const b = await s.lock(60_000);
    assert.ok(b, "free again");
    assert.equal(b.held(), true);
    await a.release(); // a second release by the old holder frees nothing
    assert.equal(await s.lock(60_000), undefined);
    await b.release();
  });
}
