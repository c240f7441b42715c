// What every AccountStore adapter must do (core/ports.ts): a JID under one account at a time, several
// numbers per account, the credentials going with the last of them. Run against the in-memory store
// (test/unit/memory-adapters.test.ts) and the Redis one (test/integration/redis-stores.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AccountStore } from "../../../src/core/ports.js";
import { GatewayError } from "../../../src/errors.js";

const A = `AC${"a".repeat(32)}`;
const B = `AC${"b".repeat(32)}`;

export function accountStoreContract(name: string, fresh: (o: { withKey: boolean }) => Promise<AccountStore>): void {
  test(`${name}: registrations share an account; its credentials go with its last number`, async () => {
    const s = await fresh({ withKey: true });
    assert.equal(s.canStore, true);
    await s.put("alice@example.com", "+15550001111", { accountSid: A, authToken: "t1" });
    await s.put("bob@example.com", "+15550002222", { accountSid: A, authToken: "t2" });
    assert.equal(await s.accountOf("alice@example.com"), A);
    const creds = await s.credentials(A);
    assert.equal(creds?.authToken, "t2", "the newest token");
    assert.deepEqual(creds?.numbers.sort(), ["+15550001111", "+15550002222"]);
    assert.deepEqual(await s.remove("alice@example.com"), { accountSid: A });
    assert.deepEqual((await s.credentials(A))?.numbers, ["+15550002222"]);
    assert.deepEqual(await s.remove("alice@example.com"), {});
    await s.remove("bob@example.com");
    assert.equal(await s.credentials(A), undefined);
  });

  test(`${name}: registering with another account leaves the previous one (gone with its last number)`, async () => {
    const s = await fresh({ withKey: true });
    await s.put("alice@example.com", "+15550001111", { accountSid: A, authToken: "t1" });
    await s.put("alice@example.com", "+15550003333", { accountSid: B, authToken: "t3" });
    assert.equal(await s.accountOf("alice@example.com"), B);
    assert.equal(await s.credentials(A), undefined);
    assert.deepEqual(await s.credentials(B), { authToken: "t3", numbers: ["+15550003333"] });
    await s.put("alice@example.com", "+15550004444", { accountSid: B, authToken: "t3" });
    assert.deepEqual(await s.credentials(B), { authToken: "t3", numbers: ["+15550004444"] }, "a new number replaces the JID's old one");
  });

  test(`${name}: without SECRETS_KEY nothing is stored`, async () => {
    const s = await fresh({ withKey: false });
    assert.equal(s.canStore, false);
    await assert.rejects(s.put("alice@example.com", "+15550001111", { accountSid: A, authToken: "t" }), (e: unknown) => e instanceof GatewayError && /SECRETS_KEY/.test(e.userText));
    assert.equal(await s.accountOf("alice@example.com"), undefined);
  });
}
