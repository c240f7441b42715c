// What a user holding their own Twilio account (REGISTRATION=byo) can sign, and what it cannot reach:
// another account's media and message log, another account's messages' status, and other sources'
// idempotency keys (issue 15, findings 1–3). Real Redis, a real XMPP server and clients, the fake Twilio
// with three accounts: the gateway's own (carol's number), alice's and mallory's (the attacker).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { connectRedis, type RedisClient } from "../../src/adapters/redis/client.js";
import { keys } from "../../src/adapters/redis/keys.js";
import { inboundSmsParams, startFakeTwilio, statusCallbackParams, type FakeTwilio } from "../fakes/fake-twilio.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { bodyOf, oobUrls } from "../support/stanzas.js";
import { postSigned } from "../support/twilio-webhooks.js";
import { waitUntil } from "../support/wait.js";
import { connectClient, xml, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SECRET = "isolation-component-secret";
const PUBLIC = "https://gw.example.test/sb";
const MAIN_SID = `AC${"1".repeat(32)}`;
const MAIN_TOKEN = "main-auth-token-isolation";
const ALICE_SID = `AC${"a".repeat(32)}`;
const ALICE_TOKEN = "alice-own-auth-token";
const MALLORY_SID = `AC${"d".repeat(32)}`;
const MALLORY_TOKEN = "mallory-own-auth-token";
const CAROL_NUMBER = "+15550001111"; // the gateway's own account (linked by the operator)
const ALICE_NUMBER = "+15550002222";
const MALLORY_NUMBER = "+15550004444";
const THEM = "+15552225555";
const CONTACT = `${THEM}@${DOMAIN}`;
const TOKENS: Record<string, string> = { [MAIN_SID]: MAIN_TOKEN, [ALICE_SID]: ALICE_TOKEN, [MALLORY_SID]: MALLORY_TOKEN };
const NS_REGISTER = "jabber:iq:register";
const NS_DATA = "jabber:x:data";
const MEDIA_LINK = /\/media\/[A-Za-z0-9_-]{43}\//;

let redis: RedisServer;
let db: RedisClient;
let server: XmppServer;
let twilio: FakeTwilio;
let gw: TestGateway;
let alice: TestClient;
let mallory: TestClient;
let carol: TestClient;
let hookToken = "";

before(async () => {
  [redis, server, twilio] = await Promise.all([
    startRedis(),
    startXmppServer({ componentDomain: DOMAIN, componentSecret: SECRET, users: ["alice", "mallory", "carol"].map((u) => ({ username: u, password: `${u}-pw` })) }),
    startFakeTwilio({ accounts: TOKENS }),
  ]);
  db = await connectRedis(redis.url, () => undefined);
  twilio.addNumber(ALICE_SID, ALICE_NUMBER);
  twilio.addNumber(MALLORY_SID, MALLORY_NUMBER);
  gw = await startGateway({
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: SECRET,
    REDIS_URL: redis.url,
    PUBLIC_URL: PUBLIC,
    TWILIO_ACCOUNT_SID: MAIN_SID,
    TWILIO_AUTH_TOKEN: MAIN_TOKEN,
    TWILIO_API_URL: twilio.url,
    REGISTRATION: "byo",
    SECRETS_KEY: randomBytes(32).toString("base64"),
    WEBHOOK_ALLOW_PRIVATE: "true",
    // A 429 is retried after 1–2 s: the window in which finding 2's forged callback arrives.
    OUTBOUND_RETRY_BASE_MS: "2000",
  });
  await gw.waitOnline();
  const connect = (u: string) => connectClient({ server, username: u, password: `${u}-pw` });
  [alice, mallory, carol] = await Promise.all([connect("alice"), connect("mallory"), connect("carol")]);
  // alice and mallory bring their own accounts (XEP-0077); carol is linked by the operator.
  for (const [client, sid, phone] of [
    [alice, ALICE_SID, ALICE_NUMBER],
    [mallory, MALLORY_SID, MALLORY_NUMBER],
  ] as const) {
    const res = await client.iq(
      xml(
        "iq",
        { type: "set", to: DOMAIN },
        xml(
          "query",
          { xmlns: NS_REGISTER },
          xml(
            "x",
            { xmlns: NS_DATA, type: "submit" },
            xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, NS_REGISTER)),
            ...Object.entries({ account_sid: sid, auth_token: TOKENS[sid]!, phone }).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))),
          ),
        ),
      ),
    );
    assert.equal(res.attrs.type, "result", res.toString());
  }
  assert.equal((await gw.admin("PUT", `/api/v1/users/carol@${server.domain}`, { phone: CAROL_NUMBER })).status, 201);
  const hook = await gw.admin("PUT", "/api/v1/webhooks/deploybot", { url: "http://127.0.0.1:9/hook", allow: [`alice@${server.domain}`] });
  assert.equal(hook.status, 201);
  hookToken = (hook.json as { token: string }).token;
});

after(async () => {
  await Promise.allSettled([alice?.stop(), mallory?.stop(), carol?.stop()]);
  await gw?.stop();
  db?.destroy();
  await Promise.allSettled([twilio?.stop(), server?.stop(), redis?.stop()]);
});

/** POSTs a Twilio webhook signed with `signer`'s token (as that account's holder can). */
function postTwilio(path: string, params: Record<string, string>, signer: string) {
  return postSigned(gw.gateway.http, { authToken: TOKENS[signer]!, publicUrl: PUBLIC }, path, params);
}

function postMessageIn(body: unknown, idempotencyKey?: string) {
  return gw.gateway.http.inject({
    method: "POST",
    url: "/api/v1/webhooks/deploybot/messages",
    headers: { authorization: `Bearer ${hookToken}`, "content-type": "application/json", ...(idempotencyKey ? { "idempotency-key": idempotencyKey } : {}) },
    payload: JSON.stringify(body),
  });
}

const png = () => Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(1500)]);
const basic = (sid: string) => `Basic ${Buffer.from(`${sid}:${TOKENS[sid]}`).toString("base64")}`;

describe("finding 1: media are fetched with the signer's credentials, for its own media only", () => {
  test("another account's message log and media are never fetched with that account's credentials", async () => {
    // Something in the gateway's own message log: carol texts someone.
    await carol.send(xml("message", { to: CONTACT, type: "chat", id: "carol-1" }, xml("body", {}, "carol's private text")));
    await waitUntil(async () => twilio.created.some((m) => m.body === "carol's private text"), { timeoutMs: 10_000, what: "carol's SMS" });
    const alicesPicture = twilio.addMedia({ accountSid: ALICE_SID, bytes: png(), contentType: "image/png" });
    const before = twilio.requests.length;

    const params = inboundSmsParams({
      from: THEM,
      to: MALLORY_NUMBER,
      body: "media grab",
      accountSid: MALLORY_SID,
      media: [
        { url: `${twilio.url}/2010-04-01/Accounts/${MAIN_SID}/Messages.csv`, contentType: "text/csv" },
        { url: `${twilio.url}/2010-04-01/Accounts/${ALICE_SID}/Messages.csv`, contentType: "text/csv" },
        { url: alicesPicture.url, contentType: "image/png" },
      ],
    });
    assert.equal((await postTwilio("/twilio/sms", params, MALLORY_SID)).statusCode, 200);
    const got = await mallory.waitFor((el) => el.name === "message" && bodyOf(el).startsWith("media grab"), 20_000);

    assert.deepEqual(oobUrls(got), [], `no link to anything: ${got.toString()}`);
    assert.doesNotMatch(bodyOf(got), MEDIA_LINK);
    assert.doesNotMatch(bodyOf(got), /carol's private text/);
    const sent = twilio.requests.slice(before).filter((r) => r.method === "GET");
    assert.deepEqual(
      sent.filter((r) => r.path.includes("Messages.csv")).map((r) => r.path),
      [],
      "a message log is not media: never fetched",
    );
    for (const r of sent) assert.notEqual(r.headers.authorization, basic(ALICE_SID), `alice's credentials went to ${r.path}`);
    for (const r of sent) assert.notEqual(r.headers.authorization, basic(MAIN_SID), `the gateway's credentials went to ${r.path}`);
  });

  test("the signer's own media are fetched with its credentials and re-hosted", async () => {
    const own = twilio.addMedia({ accountSid: MALLORY_SID, bytes: png(), contentType: "image/png" });
    const before = twilio.requests.length;
    const params = inboundSmsParams({ from: THEM, to: MALLORY_NUMBER, body: "own picture", accountSid: MALLORY_SID, media: [{ url: own.url, contentType: "image/png" }], sid: own.messageSid });
    assert.equal((await postTwilio("/twilio/sms", params, MALLORY_SID)).statusCode, 200);
    const got = await mallory.waitFor((el) => el.name === "message" && bodyOf(el).startsWith("own picture"), 20_000);
    assert.match(oobUrls(got)[0] ?? "", MEDIA_LINK);
    const fetched = twilio.requests.slice(before).find((r) => r.path === new URL(own.url).pathname);
    assert.equal(fetched?.headers.authorization, basic(MALLORY_SID));
  });
});

describe("finding 2: a status callback counts only from the account that sent the message, for its SID", () => {
  test("a callback signed by another account neither tells the sender a false error nor stops the real SMS", async () => {
    twilio.failNext(1, { status: 429 }); // the first create is refused: the job waits its backoff, pending
    const before = twilio.requests.length;
    await alice.send(xml("message", { to: CONTACT, type: "chat", id: "alice-f2" }, xml("body", {}, "alice's real text"), xml("request", { xmlns: "urn:xmpp:receipts" })));
    const [first] = (await twilio.waitForRequests(before + 1, 10_000)).slice(before);
    const id = new URL(String(first!.form.StatusCallback)).searchParams.get("id")!;

    // mallory, with his own valid signature and his own number as From, reports alice's message failed.
    const forged = statusCallbackParams({ sid: `SM${"f".repeat(32)}`, status: "undelivered", errorCode: 30003, from: MALLORY_NUMBER, to: THEM, accountSid: MALLORY_SID });
    assert.equal((await postTwilio(`/twilio/status?id=${id}`, forged, MALLORY_SID)).statusCode, 200);

    await waitUntil(async () => twilio.created.some((m) => m.body === "alice's real text"), { timeoutMs: 15_000, what: "alice's SMS sent after the retry" });
    const created = twilio.created.find((m) => m.body === "alice's real text")!;
    assert.equal(created.account_sid, ALICE_SID);
    // After the create, the same forgery again: still nothing.
    assert.equal((await postTwilio(`/twilio/status?id=${id}`, { ...forged, MessageSid: created.sid, SmsSid: created.sid }, MALLORY_SID)).statusCode, 200);
    await alice.expectNone((el) => el.attrs.id === "alice-f2" && el.attrs.type === "error", 1000);

    // The real callback, signed by alice's account, gives the receipt.
    assert.equal(
      (await postTwilio(`/twilio/status?id=${id}`, statusCallbackParams({ sid: created.sid, status: "delivered", from: ALICE_NUMBER, to: THEM, accountSid: ALICE_SID }), ALICE_SID)).statusCode,
      200,
    );
    await alice.waitFor((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "alice-f2", 5000);
  });

  test("a callback signed by the gateway's own account cannot touch a user's own account's message", async () => {
    const before = twilio.requests.length;
    await alice.send(xml("message", { to: CONTACT, type: "chat", id: "alice-f2b" }, xml("body", {}, "alice again")));
    const [req] = (await twilio.waitForRequests(before + 1, 10_000)).slice(before);
    const id = new URL(String(req!.form.StatusCallback)).searchParams.get("id")!;
    await waitUntil(async () => twilio.created.some((m) => m.body === "alice again"), { timeoutMs: 10_000, what: "the create" });
    const created = twilio.created.find((m) => m.body === "alice again")!;
    const params = statusCallbackParams({ sid: created.sid, status: "failed", errorCode: 30007, from: ALICE_NUMBER, to: THEM, accountSid: MAIN_SID });
    assert.equal((await postTwilio(`/twilio/status?id=${id}`, params, MAIN_SID)).statusCode, 200);
    await alice.expectNone((el) => el.attrs.id === "alice-f2b" && el.attrs.type === "error", 800);
  });

  test("a status callback without From is refused", async () => {
    const { From: _from, ...noFrom } = statusCallbackParams({ sid: `SM${"1".repeat(32)}`, status: "delivered", from: ALICE_NUMBER, to: THEM, accountSid: ALICE_SID });
    const res = await postTwilio("/twilio/status?id=01JXXXXXXXXXXXXXXXXXXXXXXX", noFrom, ALICE_SID);
    assert.equal(res.statusCode, 403, res.body); // a user's account speaks only for its own numbers
    const main = await postTwilio("/twilio/status?id=01JXXXXXXXXXXXXXXXXXXXXXXX", { ...noFrom, AccountSid: MAIN_SID }, MAIN_SID);
    assert.equal(main.statusCode, 400, main.body);
    assert.match(JSON.parse(main.body).detail as string, /From/);
  });
});

describe("finding 3: each source has its own idempotency keys", () => {
  test("a MessageSid that is not a Twilio SID is refused, and cannot swallow a bot's Idempotency-Key", async () => {
    const params = inboundSmsParams({ from: THEM, to: MALLORY_NUMBER, body: "poison", accountSid: MALLORY_SID, sid: "webhook:deploybot:build-42" });
    const res = await postTwilio("/twilio/sms", params, MALLORY_SID);
    assert.equal(res.statusCode, 400, res.body);
    assert.match(JSON.parse(res.body).detail as string, /MessageSid/);

    const posted = await postMessageIn({ to: `alice@${server.domain}`, body: "build 42 passed" }, "build-42");
    assert.equal(posted.statusCode, 202, posted.body);
    await alice.waitFor((el) => bodyOf(el) === "build 42 passed", 10_000);
  });

  test("the same SID signed by two accounts is two messages, and one never gets the other's media", async () => {
    const picture = twilio.addMedia({ accountSid: ALICE_SID, bytes: png(), contentType: "image/png" });
    const sid = picture.messageSid;
    assert.equal(
      (
        await postTwilio(
          "/twilio/sms",
          inboundSmsParams({ from: THEM, to: ALICE_NUMBER, body: "for alice", accountSid: ALICE_SID, sid, media: [{ url: picture.url, contentType: "image/png" }] }),
          ALICE_SID,
        )
      ).statusCode,
      200,
    );
    const hers = await alice.waitFor((el) => bodyOf(el).startsWith("for alice"), 20_000);
    const herLink = oobUrls(hers)[0] ?? "";
    assert.match(herLink, MEDIA_LINK);

    // mallory names the same SID (he signs whatever he likes), with a picture of his own.
    const his = twilio.addMedia({ accountSid: MALLORY_SID, bytes: png(), contentType: "image/png" });
    assert.equal(
      (
        await postTwilio(
          "/twilio/sms",
          inboundSmsParams({ from: THEM, to: MALLORY_NUMBER, body: "same sid", accountSid: MALLORY_SID, sid, media: [{ url: his.url, contentType: "image/png" }] }),
          MALLORY_SID,
        )
      ).statusCode,
      200,
    );
    const got = await mallory.waitFor((el) => bodyOf(el).startsWith("same sid"), 20_000);
    const link = oobUrls(got)[0] ?? "";
    assert.match(link, MEDIA_LINK, "not taken for a repeat of alice's text");
    assert.notEqual(link, herLink, "not alice's picture");
  });

  test("keys written before namespaces: a Twilio SID is still a repeat, a forged marker on a bot's key is not honoured", async () => {
    // What the previous version left in Redis: an inbound text's marker under its bare SID, and a marker
    // a forged MessageSid wrote where a bot's Idempotency-Key lives (its value is that forged "SID").
    const oldSid = `SM${"0".repeat(31)}7`;
    await db.set(keys.seen(oldSid), oldSid, { expiration: { type: "EX", value: 3600 } });
    await db.set(keys.seen("webhook:deploybot:build-43"), "webhook:deploybot:build-43", { expiration: { type: "EX", value: 3600 } });

    const retry = inboundSmsParams({ from: THEM, to: CAROL_NUMBER, body: "taken before the upgrade", accountSid: MAIN_SID, sid: oldSid });
    assert.equal((await postTwilio("/twilio/sms", retry, MAIN_SID)).statusCode, 200);

    const first = await postMessageIn({ to: `alice@${server.domain}`, body: "build 43 passed" }, "build-43");
    assert.equal(first.statusCode, 202, first.body);
    await alice.waitFor((el) => bodyOf(el) === "build 43 passed", 10_000);
    const again = await postMessageIn({ to: `alice@${server.domain}`, body: "build 43 passed" }, "build-43");
    assert.equal(again.statusCode, 202);
    assert.equal((JSON.parse(again.body) as { id: string }).id, (JSON.parse(first.body) as { id: string }).id, "the retry is told the first id");

    await carol.expectNone((el) => bodyOf(el) === "taken before the upgrade", 1000);
    await alice.expectNone((el) => bodyOf(el) === "build 43 passed" && alice.received.filter((e) => bodyOf(e) === "build 43 passed").length > 1, 500);
  });
});
