// What every WebhookStore adapter must do (core/ports.ts): names checked, one token per target shown
// once and kept as a hash, rotation, sealed secrets, no create without a key. Run against the in-memory
// store (test/unit/memory-adapters.test.ts) and the Redis one (test/integration/redis-stores.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { WebhookStore } from "../../../src/core/ports.js";
import { GatewayError } from "../../../src/errors.js";

/** `withKey`: whether SECRETS_KEY is set for the store. */
export function webhookStoreContract(name: string, fresh: (o: { withKey: boolean }) => Promise<WebhookStore>): void {
  test(`${name}: a create shows its token and generated secret once; an update keeps the token`, async () => {
    const s = await fresh({ withKey: true });
    const made = await s.put("deploybot", { url: "https://bot.example/in", allow: ["*@example.com"] });
    assert.equal(made.created, true);
    assert.match(made.token ?? "", /^sbt_/);
    assert.ok(made.secret && made.secret.length >= 32);
    assert.deepEqual(made.target.allow, ["*@example.com"]);
    assert.equal(await s.signingSecret("deploybot"), made.secret);
    assert.equal(await s.checkToken("deploybot", made.token!), true);
    const updated = await s.put("deploybot", { url: "https://bot.example/v2", allow: ["alice@example.com"], secret: "given-secret" });
    assert.deepEqual([updated.created, updated.token, updated.secret], [false, undefined, undefined]);
    assert.equal(updated.target.createdAt, made.target.createdAt);
    assert.equal(await s.checkToken("deploybot", made.token!), true, "the token stays");
    assert.equal(await s.signingSecret("deploybot"), "given-secret");
    const got = await s.get("deploybot");
    assert.deepEqual([got?.url, got?.allow], ["https://bot.example/v2", ["alice@example.com"]]);
  });

  test(`${name}: tokens: a wrong one, another target's, an unknown name and a rotated one all fail`, async () => {
    const s = await fresh({ withKey: true });
    const a = await s.put("alpha", { url: "https://a.example/", allow: [] });
    const b = await s.put("beta", { url: "https://b.example/", allow: [] });
    assert.equal(await s.checkToken("alpha", "sbt_wrong"), false);
    assert.equal(await s.checkToken("alpha", b.token!), false);
    assert.equal(await s.checkToken("gamma", a.token!), false);
    assert.equal(await s.checkToken("Not A Name!", a.token!), false);
    const rotated = await s.rotateToken("alpha");
    assert.ok(rotated && rotated !== a.token);
    assert.equal(await s.checkToken("alpha", a.token!), false, "the old token stops at once");
    assert.equal(await s.checkToken("alpha", rotated), true);
    assert.equal(await s.rotateToken("gamma"), undefined, "no such target: nothing made");
    assert.equal(await s.get("gamma"), undefined);
  });

  test(`${name}: list sorted, delete, names checked`, async () => {
    const s = await fresh({ withKey: true });
    await s.put("zeta", { url: "https://z.example/", allow: [] });
    await s.put("alpha", { url: "https://a.example/", allow: [] });
    assert.deepEqual(
      (await s.list()).map((t) => t.name),
      ["alpha", "zeta"],
    );
    assert.equal(await s.delete("zeta"), true);
    assert.equal(await s.delete("zeta"), false);
    assert.equal(await s.signingSecret("zeta"), undefined);
    assert.deepEqual(
      (await s.list()).map((t) => t.name),
      ["alpha"],
    );
    await assert.rejects(s.put("Bad Name", { url: "https://x.example/", allow: [] }), (e: unknown) => e instanceof GatewayError && e.code === "bad_request" && e.field === "name");
  });

  test(`${name}: without SECRETS_KEY nothing is created (503 naming it); an update without a secret still works`, async () => {
    const s = await fresh({ withKey: false });
    const noKey = (e: unknown) => e instanceof GatewayError && e.httpStatus === 503 && /SECRETS_KEY/.test(e.userText);
    await assert.rejects(s.put("deploybot", { url: "https://bot.example/", allow: [] }), noKey);
    await assert.rejects(s.put("deploybot", { url: "https://bot.example/", allow: [], secret: "s" }), noKey);
    assert.equal(await s.get("deploybot"), undefined);
  });
}
