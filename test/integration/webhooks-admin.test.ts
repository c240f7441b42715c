// Admin API for webhook targets against real Redis and a real XMPP server: what is shown once, what
// is never shown again, what Redis holds (hashes and ciphertext only), and every refusal naming its field.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createRedisWebhookStore } from "../../src/adapters/redis/webhook-store.js";
import type { WebhookStore } from "../../src/core/ports.js";
import { createSecretBox } from "../../src/secrets.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { freePort } from "../support/ports.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SECRETS_KEY = randomBytes(32).toString("base64");
const URL_A = "http://127.0.0.1:9/hook-a";
const URL_B = "http://127.0.0.1:9/hook-b";

let redis: RedisServer;
let server: XmppServer;
let gw: TestGateway;
/** The same store the gateway uses, for what the API deliberately does not expose (token checks). */
let store: WebhookStore;

before(async () => {
  [redis, server] = await Promise.all([startRedis(), startXmppServer({ componentDomain: DOMAIN, componentSecret: "admin-hooks", users: [] })]);
  gw = await startGateway({
    SMS_PROVIDER: "sandbox",
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: "admin-hooks",
    REDIS_URL: redis.url,
    SECRETS_KEY,
    WEBHOOK_ALLOW_PRIVATE: "true",
  });
  await gw.waitOnline();
  store = createRedisWebhookStore(gw.gateway.redis, createSecretBox(SECRETS_KEY));
});

after(async () => {
  await gw?.stop();
  await Promise.allSettled([server?.stop(), redis?.stop()]);
});

type Created = { name: string; url: string; allow: string[]; token: string; secret?: string };
type Problem = { status: number; title: string; detail: string; field?: string };

async function create(name: string, body: Record<string, unknown> = {}): Promise<Created> {
  const res = await gw.admin("PUT", `/api/v1/webhooks/${name}`, { url: URL_A, allow: ["alice@example.com"], ...body });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  return res.json as Created;
}

async function expectProblem(method: "PUT" | "GET" | "POST" | "DELETE", url: string, body: unknown, status: number, field: string | undefined, detail: RegExp): Promise<void> {
  const res = await gw.admin(method, url, body);
  assert.equal(res.status, status, JSON.stringify(res.json));
  assert.match(String(res.headers["content-type"]), /^application\/problem\+json/);
  const p = res.json as Problem;
  assert.equal(p.field, field, JSON.stringify(p));
  assert.match(p.detail, detail);
}

describe("lifecycle", () => {
  test("first PUT creates: 201 with the token and the generated secret, shown this once", async () => {
    const c = await create("deploybot", { allow: ["Alice@Example.com", "*@Corp.Example", "alice@example.com"] });
    assert.deepEqual(Object.keys(c).sort(), ["allow", "name", "secret", "token", "url"]);
    assert.equal(c.name, "deploybot");
    assert.equal(c.url, URL_A);
    assert.deepEqual(c.allow, ["alice@example.com", "*@corp.example"], "lower-cased, duplicates dropped");
    assert.match(c.token, /^sbt_[A-Za-z0-9_-]{43}$/);
    assert.match(c.secret!, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await store.checkToken("deploybot", c.token), true);
    assert.equal(await store.signingSecret("deploybot"), c.secret);
  });

  test("a secret given at creation is used and not echoed back", async () => {
    const c = await create("ownsecret", { secret: "my-own-signing-secret-123" });
    assert.equal(c.secret, undefined);
    assert.ok(c.token);
    assert.equal(await store.signingSecret("ownsecret"), "my-own-signing-secret-123");
  });

  test("GET and list show the target but never its token or secret", async () => {
    const c = await create("readbot");
    const one = await gw.admin("GET", "/api/v1/webhooks/readbot");
    assert.equal(one.status, 200);
    const t = one.json as Record<string, unknown>;
    assert.deepEqual(Object.keys(t).sort(), ["allow", "createdAt", "name", "updatedAt", "url"]);
    assert.deepEqual({ name: t.name, url: t.url, allow: t.allow }, { name: "readbot", url: URL_A, allow: ["alice@example.com"] });
    assert.match(String(t.createdAt), /^\d{4}-\d\d-\d\dT/);
    const all = await gw.admin("GET", "/api/v1/webhooks");
    assert.equal(all.status, 200);
    const names = (all.json as { webhooks: { name: string }[] }).webhooks.map((w) => w.name);
    assert.ok(names.includes("readbot") && names.includes("deploybot"), names.join());
    for (const raw of [JSON.stringify(one.json), JSON.stringify(all.json)]) {
      assert.ok(!raw.includes(c.token) && !raw.includes(c.secret!), "token or secret leaked");
      assert.ok(!/"(token|secret|tokenHash)":/i.test(raw), raw);
    }
  });

  test("a later PUT updates url, allow and secret, keeps the token, and shows neither", async () => {
    const c = await create("updbot");
    const before = (await store.get("updbot"))!;
    await new Promise((r) => setTimeout(r, 5));
    const res = await gw.admin("PUT", "/api/v1/webhooks/updbot", { url: URL_B, allow: ["bob@example.com"], secret: "a-brand-new-secret-456" });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { name: "updbot", url: URL_B, allow: ["bob@example.com"] });
    assert.equal(await store.checkToken("updbot", c.token), true, "the token survives an update");
    assert.equal(await store.signingSecret("updbot"), "a-brand-new-secret-456");
    const after = (await store.get("updbot"))!;
    assert.equal(after.createdAt, before.createdAt);
    assert.ok(after.updatedAt > before.updatedAt);
    // Without `secret` the stored one stays.
    assert.equal((await gw.admin("PUT", "/api/v1/webhooks/updbot", { url: URL_A, allow: ["bob@example.com"] })).status, 200);
    assert.equal(await store.signingSecret("updbot"), "a-brand-new-secret-456");
  });

  test("rotating the token: the old one stops working at once", async () => {
    const c = await create("rotbot");
    const res = await gw.admin("POST", "/api/v1/webhooks/rotbot/token");
    assert.equal(res.status, 200);
    const { name, token } = res.json as { name: string; token: string };
    assert.equal(name, "rotbot");
    assert.match(token, /^sbt_/);
    assert.notEqual(token, c.token);
    assert.equal(await store.checkToken("rotbot", c.token), false);
    assert.equal(await store.checkToken("rotbot", token), true);
    assert.equal(await store.checkToken("deploybot", token), false, "a token is only good for its own target");
    await expectProblem("POST", "/api/v1/webhooks/nosuchbot/token", undefined, 404, undefined, /no webhook named nosuchbot/);
  });

  test("DELETE removes the target and its keys; then 404", async () => {
    const c = await create("delbot");
    assert.equal((await gw.admin("DELETE", "/api/v1/webhooks/delbot")).status, 204);
    await expectProblem("GET", "/api/v1/webhooks/delbot", undefined, 404, undefined, /no webhook named delbot/);
    await expectProblem("DELETE", "/api/v1/webhooks/delbot", undefined, 404, undefined, /no webhook named delbot/);
    assert.equal(await store.checkToken("delbot", c.token), false);
    assert.equal(await gw.gateway.redis.exists("sb:v1:webhook:delbot"), 0);
    assert.equal(await gw.gateway.redis.sIsMember("sb:v1:webhooks", "delbot"), 0);
    const names = ((await gw.admin("GET", "/api/v1/webhooks")).json as { webhooks: { name: string }[] }).webhooks.map((w) => w.name);
    assert.ok(!names.includes("delbot"));
  });

  test("Redis holds a hash of the token and a sealed secret, never either in plain text", async () => {
    const c = await create("storedbot");
    const h = await gw.gateway.redis.hGetAll("sb:v1:webhook:storedbot");
    assert.deepEqual(Object.keys(h).sort(), ["allow", "createdAt", "secret", "tokenHash", "updatedAt", "url"]);
    assert.equal(h.tokenHash, createHash("sha256").update(c.token).digest("hex"));
    assert.match(h.secret!, /^v1:/);
    const everything = JSON.stringify(h);
    for (const plain of [c.token, c.token.slice(4), c.secret!, Buffer.from(c.secret!).toString("base64")]) assert.ok(!everything.includes(plain), "plaintext in Redis");
  });

  test("every admin route needs the admin token", async () => {
    for (const [method, url] of [
      ["GET", "/api/v1/webhooks"],
      ["GET", "/api/v1/webhooks/deploybot"],
      ["POST", "/api/v1/webhooks/deploybot/token"],
      ["DELETE", "/api/v1/webhooks/deploybot"],
    ] as const) {
      const res = await gw.gateway.http.inject({ method, url, headers: { authorization: "Bearer wrong-token-wrong-token" } });
      assert.equal(res.statusCode, 401, `${method} ${url}`);
    }
    assert.equal(await store.checkToken("deploybot", "sbt_nope"), false);
    assert.ok(await store.get("deploybot"), "still there");
  });
});

describe("refusals name the field", () => {
  test("a name that looks like a phone number is refused, saying so", async () => {
    for (const name of ["+15551234567", "15551234567", "555-0100", "72975"]) {
      await expectProblem(
        "PUT",
        `/api/v1/webhooks/${encodeURIComponent(name)}`,
        { url: URL_A, allow: ["alice@example.com"] },
        400,
        "params.name",
        /looks like a phone number; webhook names start with a letter/,
      );
    }
    await expectProblem("GET", "/api/v1/webhooks/%2B15551234567", undefined, 400, "params.name", /looks like a phone number/);
  });

  test("other bad names are refused with the expected form", async () => {
    for (const name of ["DeployBot", "~amazon", "_bot", "a".repeat(65), "bot%20name"]) {
      await expectProblem("PUT", `/api/v1/webhooks/${name}`, { url: URL_A, allow: ["alice@example.com"] }, 400, "params.name", /is not a webhook name: a lower-case letter/);
    }
  });

  test("allow: required, not empty, each entry a bare JID or *@domain", async () => {
    const put = (allow: unknown) => ({ url: URL_A, allow });
    await expectProblem("PUT", "/api/v1/webhooks/allowbot", { url: URL_A }, 400, "body.allow", /body\.allow/);
    await expectProblem("PUT", "/api/v1/webhooks/allowbot", put([]), 400, "body.allow", /at least one JID/);
    for (const bad of ["alice@example.com/phone", "example.com", "*@", "*@example.com/x", "al ice@example.com", "*"]) {
      await expectProblem("PUT", "/api/v1/webhooks/allowbot", put(["ok@example.com", bad]), 400, "body.allow.1", /must be a bare JID such as alice@example\.com, or \*@example\.com/);
    }
    await expectProblem("PUT", "/api/v1/webhooks/allowbot", put("alice@example.com"), 400, "body.allow", /body\.allow/);
    assert.equal((await gw.admin("GET", "/api/v1/webhooks/allowbot")).status, 404, "nothing stored");
  });

  test("url: http(s) only, absolute, required", async () => {
    for (const url of ["ftp://example.com/x", "not a url", "/relative/hook", "javascript:alert(1)"]) {
      await expectProblem("PUT", "/api/v1/webhooks/urlbot", { url, allow: ["alice@example.com"] }, 400, "body.url", /must be an absolute http:\/\/ or https:\/\/ URL/);
    }
    await expectProblem("PUT", "/api/v1/webhooks/urlbot", { allow: ["alice@example.com"] }, 400, "body.url", /body\.url/);
  });

  test("secret: at least 16 characters", async () => {
    await expectProblem("PUT", "/api/v1/webhooks/secretbot", { url: URL_A, allow: ["alice@example.com"], secret: "short" }, 400, "body.secret", /at least 16 characters/);
  });
});

describe("a gateway without SECRETS_KEY and with private targets off", () => {
  let bare: TestGateway;
  before(async () => {
    // Pointed at a closed port: it never holds the component domain of the gateway above.
    bare = await startGateway({ SMS_PROVIDER: "sandbox", XMPP_SERVICE: `xmpp://127.0.0.1:${await freePort()}`, XMPP_DOMAIN: DOMAIN, XMPP_SECRET: "x", REDIS_URL: redis.url });
  });
  after(() => bare?.stop());

  test("creating a target answers 503 naming SECRETS_KEY and how to make one; nothing is stored", async () => {
    const res = await bare.admin("PUT", "/api/v1/webhooks/nokeybot", { url: "https://93.184.215.14/hook", allow: ["alice@example.com"] });
    assert.equal(res.status, 503, JSON.stringify(res.json));
    const p = res.json as Problem;
    assert.equal(p.title, "Service Unavailable");
    assert.match(p.detail, /^SECRETS_KEY is not set: the gateway refuses to store secrets without it; generate one with openssl rand -base64 32/);
    assert.equal((await bare.admin("PUT", "/api/v1/webhooks/nokeybot", { url: "https://93.184.215.14/hook", allow: ["alice@example.com"], secret: "given-secret-0123456789" })).status, 503);
    assert.equal((await bare.admin("GET", "/api/v1/webhooks/nokeybot")).status, 404);
    assert.equal(await bare.gateway.redis.exists("sb:v1:webhook:nokeybot"), 0);
  });

  test("reads and updates that store no secret still work", async () => {
    const list = await bare.admin("GET", "/api/v1/webhooks");
    assert.equal(list.status, 200);
    assert.ok((list.json as { webhooks: { name: string }[] }).webhooks.some((w) => w.name === "deploybot"));
    const res = await bare.admin("PUT", "/api/v1/webhooks/readbot", { url: "https://93.184.215.14/other", allow: ["carol@example.com"] });
    assert.equal(res.status, 200, JSON.stringify(res.json));
  });

  test("the SSRF guard refuses a loopback URL at registration, naming body.url", async () => {
    const res = await bare.admin("PUT", "/api/v1/webhooks/sneakybot", { url: "http://127.0.0.1:8080/hook", allow: ["alice@example.com"] });
    assert.equal(res.status, 400, JSON.stringify(res.json));
    assert.equal((res.json as Problem).field, "body.url");
  });
});
