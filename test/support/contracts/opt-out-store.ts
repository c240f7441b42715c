// What every OptOutStore and IntroductionStore adapter must do (core/ports.ts). Run against the
// in-memory stores (test/unit/memory-adapters.test.ts) and the Redis ones
// (test/integration/redis-stores.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { IntroductionStore, OptOutStore } from "../../../src/core/ports.js";

export function optOutStoreContract(name: string, fresh: () => Promise<{ optOuts: OptOutStore; introductions: IntroductionStore }>): void {
  test(`${name}: opt-outs per (our number, their number); news only when something changed`, async () => {
    const { optOuts } = await fresh();
    assert.equal(await optOuts.isOptedOut("+15550001111", "+15552223333"), false);
    assert.equal(await optOuts.optOut("+15550001111", "+15552223333", "keyword"), true);
    assert.equal(await optOuts.optOut("+15550001111", "+15552223333", "provider-21610"), false, "a repeated STOP is no news");
    assert.equal(await optOuts.isOptedOut("+15550001111", "+15552223333"), true);
    assert.equal(await optOuts.isOptedOut("+15550009999", "+15552223333"), false, "another of our numbers");
    assert.equal(await optOuts.optIn("+15550001111", "+15552223333"), true);
    assert.equal(await optOuts.optIn("+15550001111", "+15552223333"), false);
    assert.equal(await optOuts.isOptedOut("+15550001111", "+15552223333"), false);
  });

  test(`${name}: an introduction is news once per pair, until the user is forgotten`, async () => {
    const { introductions } = await fresh();
    assert.equal(await introductions.introduce("alice@example.com", "+15552223333"), true);
    assert.equal(await introductions.introduce("alice@example.com", "+15552223333"), false);
    assert.equal(await introductions.introduce("bob@example.com", "+15552223333"), true);
    await introductions.forget("alice@example.com");
    assert.equal(await introductions.introduce("alice@example.com", "+15552223333"), true);
    assert.equal(await introductions.introduce("bob@example.com", "+15552223333"), false);
  });
}
