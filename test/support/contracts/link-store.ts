// What every LinkStore adapter must do (core/ports.ts), run against the in-memory store
// (test/unit/memory-adapters.test.ts) and the Redis one (test/integration/redis-stores.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { LinkStore } from "../../../src/core/ports.js";
import { GatewayError } from "../../../src/errors.js";

export function linkStoreContract(name: string, fresh: () => Promise<LinkStore>): void {
  test(`${name}: link, look up both ways, relink, list sorted`, async () => {
    const s = await fresh();
    assert.deepEqual(await s.link("bob@example.com", "+15550002222"), { created: true });
    assert.deepEqual(await s.link("alice@example.com", "+15550001111"), { created: true });
    assert.deepEqual(await s.link("alice@example.com", "+15550001111"), { created: false }, "the same link again");
    assert.equal(await s.phoneOf("alice@example.com"), "+15550001111");
    assert.equal(await s.jidOf("+15550001111"), "alice@example.com");
    assert.deepEqual(await s.link("alice@example.com", "+15550003333"), { created: false, previous: "+15550001111" });
    assert.equal(await s.jidOf("+15550001111"), undefined, "the old number is free");
    assert.equal(await s.phoneOf("alice@example.com"), "+15550003333");
    assert.deepEqual(await s.list(), [
      { jid: "alice@example.com", phone: "+15550003333" },
      { jid: "bob@example.com", phone: "+15550002222" },
    ]);
  });

  test(`${name}: a number another JID holds is a conflict on the phone field, and changes nothing`, async () => {
    const s = await fresh();
    await s.link("alice@example.com", "+15550001111");
    await s.link("bob@example.com", "+15550002222");
    await assert.rejects(s.link("bob@example.com", "+15550001111"), (e: unknown) => e instanceof GatewayError && e.code === "conflict" && e.field === "phone" && /already linked/.test(e.userText));
    assert.equal(await s.phoneOf("bob@example.com"), "+15550002222");
    assert.equal(await s.jidOf("+15550001111"), "alice@example.com");
  });

  test(`${name}: unlink frees the number; a second unlink finds nothing`, async () => {
    const s = await fresh();
    await s.link("alice@example.com", "+15550001111");
    assert.equal(await s.unlink("alice@example.com"), true);
    assert.equal(await s.unlink("alice@example.com"), false);
    assert.equal(await s.phoneOf("alice@example.com"), undefined);
    assert.equal(await s.jidOf("+15550001111"), undefined);
    assert.deepEqual(await s.list(), []);
    assert.deepEqual(await s.link("bob@example.com", "+15550001111"), { created: true });
  });
}
