// What every MediaTokens/MediaIndex adapter must do (core/flows/media.ts). Run against the in-memory one
// (test/unit/memory-adapters.test.ts) and the Redis one (test/integration/redis-stores.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { MediaIndex, MediaTokens } from "../../../src/core/flows/media.js";

export function mediaTokensContract(name: string, fresh: () => Promise<MediaTokens & MediaIndex>): void {
  test(`${name}: the first token reserved for a key wins; tokens are listed under their owner until taken`, async () => {
    const t = await fresh();
    const first = await t.reserve("AC1:MM1:0", 60, "alice@example.com");
    assert.match(first, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await t.reserve("AC1:MM1:0", 60, "alice@example.com"), first, "a redelivery gets the same token");
    const other = await t.reserve("AC1:MM1:1", 60, "alice@example.com");
    assert.notEqual(other, first);
    await t.reserve("MM2:0", 60);
    assert.deepEqual((await t.takeOwned("alice@example.com")).sort(), [first, other].sort());
    assert.deepEqual(await t.takeOwned("alice@example.com"), [], "the list is forgotten");
    assert.deepEqual(await t.takeOwned("bob@example.com"), []);
  });
}
