// Hostile input on the HTTP surface (issue 6, "Hostile input"): generated requests to the Twilio
// webhooks (missing, repeated, extra and wrongly typed fields, huge NumMedia, huge bodies, forged and
// repeated signatures), the admin API and the message-in API, through the real app (inject) on a real
// Redis. Every answer is 2xx or a 4xx problem, never a 5xx; nothing rejects unhandled. Then each size
// limit of the HTTP surface, at its edge. No XMPP server: the gateway keeps retrying it meanwhile, and
// /readyz's details (the component link's last error names that address) are for the admin token only.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { inboundSmsParams } from "../fakes/fake-twilio.js";
import { startGateway, ADMIN_TOKEN, type TestGateway } from "../support/gateway.js";
import { checkOutcome, httpCases, send, type HttpFuzzContext } from "../support/hostile-http.js";
import { encodeForm } from "../support/hostile.js";
import { freePort } from "../support/ports.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { postSigned } from "../support/twilio-webhooks.js";

const DOMAIN = "sms.localhost";
const SID = `AC${"2".repeat(32)}`;
const TOKEN = "fake-auth-token-hostile";
const PUBLIC = "https://gw.example.test";
const USER = "alice@localhost";
const NUMBER = "+15550001111";
const BODY_LIMIT = 64 * 1024;

let redis: RedisServer;
let gw: TestGateway;
let xmppPort: number;
let webhookToken = "";
const rejections: unknown[] = [];
const onRejection = (e: unknown) => void rejections.push(e);
let ctx: HttpFuzzContext;

before(async () => {
  process.on("unhandledRejection", onRejection);
  redis = await startRedis();
  gw = await startGateway({
    XMPP_SERVICE: `xmpp://127.0.0.1:${(xmppPort = await freePort())}`, // nobody there: HTTP works without XMPP
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: "unused",
    REDIS_URL: redis.url,
    PUBLIC_URL: PUBLIC,
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: TOKEN,
    TWILIO_API_URL: "http://127.0.0.1:9",
    SECRETS_KEY: randomBytes(32).toString("base64"),
    WEBHOOK_ALLOW_PRIVATE: "true",
    HTTP_BODY_LIMIT: String(BODY_LIMIT),
    WEBHOOK_IN_PER_MINUTE: "0",
    ADMIN_AUTH_FAILURES_PER_MINUTE: "1000000",
  });
  assert.equal((await gw.admin("PUT", `/api/v1/users/${USER}`, { phone: NUMBER })).status, 201);
  const hook = await gw.admin("PUT", "/api/v1/webhooks/bot", { url: "http://127.0.0.1:9/hook", allow: [USER] });
  assert.equal(hook.status, 201);
  webhookToken = (hook.json as { token: string }).token;
  ctx = {
    publicUrl: PUBLIC,
    twilioToken: TOKEN,
    accountSid: SID,
    mediaUrls: [{ url: `http://127.0.0.1:9/2010-04-01/Accounts/${SID}/Messages/MM1/Media/ME1`, contentType: "image/jpeg" }],
    adminToken: ADMIN_TOKEN,
    userNumber: NUMBER,
    userJid: USER,
    webhookName: "bot",
    webhookToken: () => webhookToken,
    webhookUrl: "http://127.0.0.1:9/hook",
    bodyLimit: BODY_LIMIT,
  };
});

after(async () => {
  process.off("unhandledRejection", onRejection);
  await gw?.stop();
  await redis?.stop();
});

async function fuzz(name: keyof typeof httpCases, numRuns: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(httpCases[name](ctx), async (c) => {
      const r = await send(gw.gateway.http, c);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      checkOutcome(c, r);
    }),
    { numRuns },
  );
  // the gateway still answers
  assert.equal((await gw.gateway.http.inject({ method: "GET", url: "/healthz" })).statusCode, 200);
  assert.deepEqual(rejections, []);
  return statuses;
}

describe("generated hostile requests: 2xx or a 4xx problem, never 5xx", () => {
  test("POST /twilio/sms", async () => {
    const s = await fuzz("twilioSms", 200);
    assert.ok((s.get(200) ?? 0) > 0 && (s.get(400) ?? 0) > 0 && (s.get(403) ?? 0) > 0, `a mix of outcomes: ${JSON.stringify([...s])}`);
  });
  test("POST /twilio/status", async () => {
    await fuzz("twilioStatus", 120);
  });
  test("the admin API", async () => {
    await fuzz("adminCase", 250);
  });
  test("the message-in API", async () => {
    const s = await fuzz("messageInCase", 150);
    assert.ok((s.get(202) ?? 0) > 0 && (s.get(400) ?? 0) > 0, `a mix of outcomes: ${JSON.stringify([...s])}`);
  });
  test("bodies over HTTP_BODY_LIMIT: 413 on every route that takes a body", async () => {
    await fuzz("overLimitCase", 20);
  });
});

describe("size limits at their edge", () => {
  const postSms = (params: Record<string, string>) => postSigned(gw.gateway.http, { authToken: TOKEN, publicUrl: PUBLIC }, "/twilio/sms", params);
  const sms = (body: string, extra: Record<string, string> = {}) => ({ ...inboundSmsParams({ from: "+15552223333", to: NUMBER, body, accountSid: SID }), ...extra });

  test("inbound SMS Body: 10,000 characters taken (Twilio sends at most 1,600), 10,001 refused with 400 naming Body", async () => {
    assert.equal((await postSms(sms("é".repeat(10_000)))).statusCode, 200);
    const res = await postSms(sms("é".repeat(10_001)));
    assert.equal(res.statusCode, 400);
    assert.match(res.headers["content-type"] as string, /^application\/problem\+json/);
    assert.equal((JSON.parse(res.body) as { field: string }).field, "body.Body");
  });

  test("NumMedia: 10 taken (Twilio's maximum); 11, 1e3, -1, 1.5 and Infinity refused with 400", async () => {
    assert.equal((await postSms(sms("pics", { NumMedia: "10" }))).statusCode, 200);
    for (const n of ["11", "1e3", "-1", "1.5", "Infinity", "99999999999999999999"]) {
      const res = await postSms(sms("pics", { NumMedia: n }));
      assert.equal(res.statusCode, 400, n);
      assert.equal((JSON.parse(res.body) as { field: string }).field, "body.NumMedia", n);
    }
  });

  test("HTTP_BODY_LIMIT: a form at the limit is read, one byte over is 413", async () => {
    const params = sms("");
    const fixed = encodeForm(params).length;
    params.Padding = "x".repeat(BODY_LIMIT - fixed - "&Padding=".length);
    assert.equal(encodeForm(params).length, BODY_LIMIT);
    assert.equal((await postSms(params)).statusCode, 200);
    params.Padding += "x";
    const res = await postSms(params);
    assert.equal(res.statusCode, 413);
    assert.match(res.headers["content-type"] as string, /^application\/problem\+json/);
  });

  test("a long JID (1,000-character localpart) is a JID like any other in the admin API, not a 404 of the router", async () => {
    const jid = `${"a".repeat(1000)}@localhost`;
    assert.equal((await gw.admin("PUT", `/api/v1/users/${jid}`, { phone: "+15550009999" })).status, 201);
    assert.deepEqual((await gw.admin("GET", `/api/v1/users/${jid}`)).json, { jid, phone: "+15550009999" });
    assert.equal((await gw.admin("DELETE", `/api/v1/users/${jid}`)).status, 204);
  });

  test("a URL the router cannot decode is a 400 problem", async () => {
    for (const url of ["/api/v1/users/%", "/api/v1/webhooks/a%ZZ/token", "/%E0%A4%A"]) {
      const res = await gw.gateway.http.inject({ method: "GET", url, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(res.statusCode, 400, url);
      assert.match(res.headers["content-type"] as string, /^application\/problem\+json/, url);
    }
  });

  test("a dead-letter id Redis cannot hold (over 64 bits) is a 400, not a Redis error", async () => {
    for (const id of ["99999999999999999999999-0", "18446744073709551616-0", "1-18446744073709551616"]) {
      const res = await gw.admin("POST", `/api/v1/dead-letters/${id}/retry`);
      assert.equal(res.status, 400, id);
    }
    assert.equal((await gw.admin("POST", "/api/v1/dead-letters/18446744073709551615-18446744073709551615/retry")).status, 404);
  });

  test("message-in: body 10,000 characters, 10 media of 2,048 characters each; one more of either is 400", async () => {
    const post = (body: unknown) =>
      gw.gateway.http.inject({
        method: "POST",
        url: "/api/v1/webhooks/bot/messages",
        headers: { authorization: `Bearer ${webhookToken}`, "content-type": "application/json" },
        payload: JSON.stringify(body),
      });
    const url = (n: number) => `https://files.example/${"a".repeat(n - "https://files.example/".length)}`;
    assert.equal((await post({ to: USER, body: "x".repeat(10_000), media: Array.from({ length: 10 }, () => url(2048)) })).statusCode, 202);
    for (const [bad, field] of [
      [{ to: USER, body: "x".repeat(10_001) }, "body.body"],
      [{ to: USER, body: "x", media: [url(2049)] }, "body.media.0"],
      [{ to: USER, body: "x", media: Array.from({ length: 11 }, () => url(30)) }, "body.media"],
      [{ to: USER, body: "x", subject: "s".repeat(257) }, "body.subject"],
    ] as const) {
      const res = await post(bad);
      assert.equal(res.statusCode, 400, field);
      assert.equal((JSON.parse(res.body) as { field: string }).field, field);
    }
  });
});

describe("/readyz tells strangers only its status", () => {
  test("no token: the status code and one word; the admin token: Redis, journal, component link (its last error), provider, breaker", async () => {
    const end = Date.now() + 10_000;
    while (!gw.gateway.xmppState().lastError && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    const readyz = (headers: Record<string, string> = {}) => gw.gateway.http.inject({ method: "GET", url: "/readyz", headers });

    for (const headers of [{}, { authorization: "Bearer not-the-admin-token" }, { authorization: "Basic YWRtaW46YWRtaW4=" }] as Record<string, string>[]) {
      const anyone = await readyz(headers);
      assert.equal(anyone.statusCode, 200, JSON.stringify(headers));
      assert.deepEqual(anyone.json(), { status: "ready" }, JSON.stringify(headers));
      assert.doesNotMatch(anyone.body, new RegExp(`${xmppPort}|127\\.0\\.0\\.1|lastError|journal|breaker`));
    }

    const admin = await readyz({ authorization: `Bearer ${ADMIN_TOKEN}` });
    assert.equal(admin.statusCode, 200);
    const body = admin.json() as {
      status: string;
      redis: string;
      journal: { writable: boolean };
      xmpp: { connected: boolean; lastError?: string };
      provider: string;
      breaker: { tripped: boolean; limitPerHour: number };
    };
    assert.equal(body.status, "ready");
    assert.equal(body.redis, "ok");
    assert.equal(body.journal.writable, true);
    assert.equal(body.xmpp.connected, false);
    assert.match(body.xmpp.lastError ?? "", new RegExp(`127\\.0\\.0\\.1:${xmppPort}`));
    assert.equal(body.provider, "twilio");
    assert.deepEqual([body.breaker.tripped, body.breaker.limitPerHour], [false, 3000]);
  });
});
