// Data lifecycle (issue 6 item 3), end to end against real Redis, a real XMPP server and the fake
// Twilio: after traffic of every kind, every Redis key has a TTL or is one of the documented kinds
// that live until removed; no message body outlives its delivery in Redis; the gateway's own debug log
// carries no body, token, secret or full phone number; dead letters are trimmed after
// DEAD_LETTER_RETENTION; and unlinking (admin API) or unregistering (XEP-0077 <remove/>) deletes the
// user's link, credentials, introductions, media and queued work (dead-lettered with the reason).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { keys, RECONCILE_STATE_TTL_S, RECORD_MAX_AGE_S } from "../../src/adapters/redis/keys.js";
import { inboundSmsParams, startFakeTwilio, statusCallbackParams, type FakeTwilio } from "../fakes/fake-twilio.js";
import { ADMIN_TOKEN, startGateway, type TestGateway } from "../support/gateway.js";
import { removeDirAtExit } from "../support/processes.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { bodyOf, OOB } from "../support/stanzas.js";
import { postSigned } from "../support/twilio-webhooks.js";
import { waitUntil } from "../support/wait.js";
import { connectClient, xml, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const COMPONENT_SECRET = "lifecycle-component-secret";
const PUBLIC = "https://gw.example.test/sb";
const MAIN_SID = `AC${"1".repeat(32)}`;
const MAIN_TOKEN = "main-auth-token-lifecycle";
const ALICE_SID = `AC${"a".repeat(32)}`;
const ALICE_TOKEN = "alice-own-auth-token";
const BOB_SID = `AC${"b".repeat(32)}`;
const BOB_TOKEN = "bob-own-auth-token";
const ALICE_NUMBER = "+15550002222";
const BOB_NUMBER = "+15550003333";
const THEM = "+15552224444";
const CONTACT = `${THEM}@${DOMAIN}`;
const SECRETS_KEY = randomBytes(32).toString("base64");
const MESSAGE_RETENTION = 3600;
const DEDUPE_TTL = 7200;
const MEDIA_RETENTION = 86400;
const NS_REGISTER = "jabber:iq:register";
const NS_DATA = "jabber:x:data";

/** Every body sent in any direction: none may be left in Redis once delivered, nor appear in a log line. */
/** The webhook URL's path and query carry secrets (as Slack-style hook URLs do). */
const HOOK_PATH_SECRET = "hookpathsecret9d7e";
const HOOK_QUERY_SECRET = "hookquerysecret1b2c";

const BODIES = {
  refused: "lifecycle refused body 5e5e",
  badSignature: "lifecycle forged body 3c3c",
  smsOut: "lifecycle body out 7f3a",
  smsIn: "lifecycle body in 91c2",
  mmsIn: "lifecycle caption e55d",
  hookOut: "lifecycle hook out 2b8e",
  hookReply: "lifecycle hook reply 4d1f",
  hookIn: "lifecycle hook in c0a9",
  bobOut: "lifecycle bob out 6a6a",
};

let redis: RedisServer;
let server: XmppServer;
let twilio: FakeTwilio;
let alice: TestClient;
let bob: TestClient;
let gw: TestGateway | undefined;
const logLines: string[] = [];
const forgetLog: string[] = [];
const mediaDir = mkdtempSync(join(tmpdir(), "sb-lifecycle-media-"));
removeDirAtExit(mediaDir);
let hookToken = "";
let hookSecret = "";
/** Media tokens alice was shown (in URLs): tokens, so never in a log line. */
const mediaTokens: string[] = [];

/** The webhook receiver: answers with a reply, or 503 while `down`. */
const receiver = {
  server: undefined as Server | undefined,
  port: 0,
  down: false,
  /** The next this many POSTs answer 503 (a retry). */
  failNext: 0,
  bodies: [] as string[],
  async start() {
    this.server = createServer((req, res: ServerResponse) => {
      let raw = "";
      req.on("data", (d: Buffer) => (raw += d.toString()));
      req.on("end", () => {
        const body = (JSON.parse(raw) as { body: string }).body;
        this.bodies.push(body);
        if (this.down || (this.failNext > 0 && this.failNext--)) return void res.writeHead(503).end();
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body === BODIES.hookOut ? { reply: BODIES.hookReply } : {}));
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.port = (this.server!.address() as AddressInfo).port;
  },
  async stop() {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  },
};

const env = (extra: Record<string, string> = {}) => ({
  XMPP_SERVICE: server.componentService,
  XMPP_DOMAIN: DOMAIN,
  XMPP_SECRET: COMPONENT_SECRET,
  XMPP_RECONNECT_MIN_MS: "100",
  REDIS_URL: redis.url,
  PUBLIC_URL: PUBLIC,
  TWILIO_ACCOUNT_SID: MAIN_SID,
  TWILIO_AUTH_TOKEN: MAIN_TOKEN,
  TWILIO_API_URL: twilio.url,
  REGISTRATION: "byo",
  SECRETS_KEY,
  WEBHOOK_ALLOW_PRIVATE: "true", // the receiver is on loopback
  WEBHOOK_TIMEOUT_MS: "2000",
  OUTBOUND_RETRY_BASE_MS: "50",
  MEDIA_DIR: mediaDir,
  MESSAGE_RETENTION: String(MESSAGE_RETENTION),
  DEDUPE_TTL: String(DEDUPE_TTL),
  MEDIA_RETENTION: String(MEDIA_RETENTION),
  ...extra,
});

async function useGateway(extra: Record<string, string> = {}, opts: { logLines?: string[] } = {}): Promise<TestGateway> {
  await gw?.stop();
  gw = await startGateway(env(extra), opts);
  await gw.waitOnline(15_000);
  return gw;
}

before(async () => {
  [redis, server, twilio] = await Promise.all([
    startRedis(),
    startXmppServer({
      componentDomain: DOMAIN,
      componentSecret: COMPONENT_SECRET,
      users: [
        { username: "alice", password: "alice-pw" },
        { username: "bob", password: "bob-pw" },
      ],
    }),
    startFakeTwilio({ accounts: { [MAIN_SID]: MAIN_TOKEN, [ALICE_SID]: ALICE_TOKEN, [BOB_SID]: BOB_TOKEN } }),
    receiver.start(),
  ]);
  twilio.addNumber(ALICE_SID, ALICE_NUMBER);
  twilio.addNumber(BOB_SID, BOB_NUMBER);
  [alice, bob] = await Promise.all([
    connectClient({ server, username: "alice", password: "alice-pw", resource: "phone" }),
    connectClient({ server, username: "bob", password: "bob-pw", resource: "desk" }),
  ]);
});

after(async () => {
  await Promise.allSettled([alice?.stop(), bob?.stop()]);
  await gw?.stop();
  await Promise.allSettled([twilio?.stop(), server?.stop(), redis?.stop(), receiver.stop()]);
});

// ---- helpers

const r = () => gw!.gateway.redis;
const tokenFor = (sid: string) => (sid === ALICE_SID ? ALICE_TOKEN : sid === BOB_SID ? BOB_TOKEN : MAIN_TOKEN);

async function postTwilio(path: string, params: Record<string, string>, accountSid: string) {
  const res = await postSigned(gw!.gateway.http, { authToken: tokenFor(accountSid), publicUrl: PUBLIC }, path, params);
  assert.equal(res.statusCode, 200, res.body);
}

const inbound = (p: { from: string; to: string; body: string; accountSid: string; media?: { url: string; contentType: string }[] }) => postTwilio("/twilio/sms", inboundSmsParams(p), p.accountSid);

function registerIq(client: TestClient, values: Record<string, string>) {
  const form = xml(
    "x",
    { xmlns: NS_DATA, type: "submit" },
    xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, NS_REGISTER)),
    ...Object.entries(values).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))),
  );
  return client.iq(xml("iq", { type: "set", to: DOMAIN }, xml("query", { xmlns: NS_REGISTER }, form)));
}

/** Creates (POSTs) the fake Twilio recorded whose From is `from`. */
const createsFrom = (from: string) => twilio.requests.filter((q) => q.method === "POST" && q.path.endsWith("/Messages.json") && q.form.From === from);

async function allKeys(): Promise<string[]> {
  return (await r().keys("*")).sort();
}

/** Every stream entry of the delivery toward XMPP and the provider, parsed. */
async function queued(): Promise<{ stream: string; item: { to: string; from: string; body?: string; kind?: string; channel?: string } }[]> {
  const out: { stream: string; item: { to: string; from: string; body?: string } }[] = [];
  for (const key of await allKeys()) {
    if (!/:stream:(to-xmpp|outbox):\d+$/.test(key)) continue;
    for (const e of (await r().xRange(key, "-", "+")) ?? []) out.push({ stream: key, item: JSON.parse(String(e.message.d)) as { to: string; from: string; body?: string } });
  }
  return out;
}

async function drained(): Promise<void> {
  await waitUntil(async () => (await queued()).length === 0, { timeoutMs: 15_000, what: "the delivery streams to be empty" });
}

/** The kinds of key documented (keys.ts, docs/operators/operations.md) as living until removed. */
const NO_TTL_KINDS: [string, RegExp][] = [
  ["links", /^sb:v1:(user:[^:]+@[^:]+:numbers|number:\+\d+:users|users)$/],
  ["accounts", /^sb:v1:(user:[^:]+@[^:]+:account|account:AC[0-9a-f]{32}(:numbers)?)$/],
  ["webhook targets", /^sb:v1:(webhook:[a-z][a-z0-9._-]*|webhooks)$/],
  ["opt-outs", /^sb:v1:optout:\+\d+$/],
  ["introduced sets", /^sb:v1:user:[^:]+@[^:]+:introduced$/],
  ["streams, dead letters and their consumer groups", /^sb:v1:stream:(to-xmpp:\d+|outbox:\d+|dead)$/],
  ["live instances and lease fencing counters", /^sb:v1:(instances|lease-token:(xmpp-link|outbound:\d+))$/],
  ["messages awaiting a status", /^sb:v1:awaiting-status$/],
];

/** The kinds with a TTL, and the longest TTL each may have. */
const TTL_KINDS: [string, RegExp, number][] = [
  ["idempotency keys", /^sb:v1:seen:/, DEDUPE_TTL],
  ["message records", /^sb:v1:msg:/, Math.max(MESSAGE_RETENTION, RECORD_MAX_AGE_S)],
  ["provider-id maps", /^sb:v1:sid:/, MESSAGE_RETENTION],
  ["media tokens", /^sb:v1:media:/, MEDIA_RETENTION],
  ["per-user media lists", /^sb:v1:user:[^:]+@[^:]+:media$/, MEDIA_RETENTION],
  ["limit counters", /^sb:v1:limit:/, 86400],
  ["leases and instance names", /^sb:v1:(lease:(xmpp-link|outbound:\d+)|instance:[A-Za-z0-9._-]+)$/, 60],
  ["reconciliation state", /^sb:v1:reconcile:((cursor|linked):AC[0-9a-f]{32}|last|lock)$/, RECONCILE_STATE_TTL_S],
];

/** Asserts the lifetime rule over every key in Redis; returns the kinds seen. */
async function assertLifetimes(): Promise<Set<string>> {
  const seen = new Set<string>();
  for (const key of await allKeys()) {
    const ttl = await r().ttl(key);
    if (ttl === -1) {
      const kind = NO_TTL_KINDS.find(([, re]) => re.test(key));
      assert.ok(kind, `${key} has no TTL and is none of the kinds documented to live until removed`);
      seen.add(kind[0]);
    } else {
      const kind = TTL_KINDS.find(([, re]) => re.test(key));
      assert.ok(kind, `${key} (TTL ${ttl} s) is of no documented kind`);
      assert.ok(ttl > 0 && ttl <= kind[2], `${key}: TTL ${ttl} s, expected at most ${kind[2]} s`);
      seen.add(kind[0]);
    }
  }
  return seen;
}

/** Every string stored in Redis outside the dead letters: values, hash fields, set members, stream entries. */
async function storedText(): Promise<string> {
  const parts: string[] = [];
  for (const key of await allKeys()) {
    if (key === keys.deadLetters) continue;
    const type = await r().type(key);
    if (type === "string") parts.push(String(await r().get(key)));
    else if (type === "hash") parts.push(JSON.stringify(await r().hGetAll(key)));
    else if (type === "set") parts.push(JSON.stringify(await r().sMembers(key)));
    else if (type === "stream") parts.push(JSON.stringify(await r().xRange(key, "-", "+")));
    else parts.push(`${key}: ${type}`);
  }
  return parts.join("\n");
}

// ---- traffic of every kind, then the checks

describe("after traffic of every kind", () => {
  before(async () => {
    await useGateway({}, { logLines });

    // Registrations (REGISTRATION=byo): alice and bob bring their own Twilio accounts (XEP-0077).
    for (const [client, sid, token, phone] of [
      [alice, ALICE_SID, ALICE_TOKEN, ALICE_NUMBER],
      [bob, BOB_SID, BOB_TOKEN, BOB_NUMBER],
    ] as const) {
      const res = await registerIq(client, { account_sid: sid, auth_token: token, phone });
      assert.equal(res.attrs.type, "result", res.toString());
    }

    // Admin calls with the token, and one with a wrong token.
    assert.equal((await gw!.admin("GET", "/api/v1/users")).status, 200);
    const wrong = await gw!.gateway.http.inject({ method: "GET", url: "/api/v1/users", headers: { authorization: "Bearer wrong-token-wrong-token" } });
    assert.equal(wrong.statusCode, 401);

    // XMPP → SMS, then its delivery report (a receipt).
    await alice.send(xml("message", { to: CONTACT, type: "chat", id: "lc-out-1" }, xml("body", {}, BODIES.smsOut), xml("request", { xmlns: "urn:xmpp:receipts" })));
    await waitUntil(async () => twilio.created.some((m) => m.body === BODIES.smsOut), { timeoutMs: 5000, what: "the SMS create" });
    const created = twilio.created.find((m) => m.body === BODIES.smsOut)!;
    const req = createsFrom(ALICE_NUMBER).find((q) => q.form.Body === BODIES.smsOut)!;
    const id = new URL(String(req.form.StatusCallback)).searchParams.get("id")!;
    for (const status of ["sent", "delivered"]) {
      await postTwilio(`/twilio/status?id=${id}`, { ...statusCallbackParams({ sid: created.sid, status, from: ALICE_NUMBER, to: THEM, accountSid: ALICE_SID }) }, ALICE_SID);
    }
    await alice.waitFor((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "lc-out-1");

    // Bob sends one through his own account (its record stays "queued": no callback).
    await bob.send(xml("message", { to: CONTACT, type: "chat", id: "lc-bob-1" }, xml("body", {}, BODIES.bobOut)));
    await waitUntil(async () => twilio.created.some((m) => m.body === BODIES.bobOut), { timeoutMs: 5000, what: "bob's SMS create" });

    // SMS → XMPP (the first text from THEM also introduces the contact), and an MMS with a picture.
    await inbound({ from: THEM, to: ALICE_NUMBER, body: BODIES.smsIn, accountSid: ALICE_SID });
    await alice.waitFor((el) => bodyOf(el) === BODIES.smsIn);
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(2000, 7)]);
    const media = twilio.addMedia({ accountSid: ALICE_SID, bytes: png, contentType: "image/png" });
    await inbound({ from: THEM, to: ALICE_NUMBER, body: BODIES.mmsIn, accountSid: ALICE_SID, media: [{ url: media.url, contentType: "image/png" }] });
    const mms = await alice.waitFor((el) => bodyOf(el).startsWith(BODIES.mmsIn), 20_000);
    for (const x of mms.getChildren("x", OOB)) mediaTokens.push(/\/media\/([A-Za-z0-9_-]{43})\//.exec(x.getChildText("url") ?? "")![1]!);
    assert.equal(mediaTokens.length, 1);

    // A webhook target with a generated secret: a message out (and its reply), a message in.
    const hook = await gw!.admin("PUT", "/api/v1/webhooks/lifebot", { url: `http://127.0.0.1:${receiver.port}/hook/${HOOK_PATH_SECRET}?key=${HOOK_QUERY_SECRET}`, allow: [alice.bareJid] });
    assert.equal(hook.status, 201, JSON.stringify(hook.json));
    ({ token: hookToken, secret: hookSecret } = hook.json as { token: string; secret: string });
    receiver.failNext = 1; // retried once: the reason is logged
    await alice.send(xml("message", { to: `lifebot@${DOMAIN}`, type: "chat", id: "lc-hook-1" }, xml("body", {}, BODIES.hookOut)));
    await alice.waitFor((el) => bodyOf(el) === BODIES.hookReply);
    const posted = await gw!.gateway.http.inject({
      method: "POST",
      url: "/api/v1/webhooks/lifebot/messages",
      headers: { authorization: `Bearer ${hookToken}`, "content-type": "application/json", "idempotency-key": "lc-build-42" },
      payload: JSON.stringify({ to: alice.bareJid, body: BODIES.hookIn }),
    });
    assert.equal(posted.statusCode, 202, posted.body);
    await alice.waitFor((el) => bodyOf(el) === BODIES.hookIn);

    // Failures: a text Twilio refuses (its message names the number), a forged inbound webhook.
    twilio.failNext(1, { status: 400, code: 21211, message: `The 'To' number ${THEM} is not a valid phone number.` });
    await alice.send(xml("message", { to: CONTACT, type: "chat", id: "lc-refused" }, xml("body", {}, BODIES.refused)));
    await alice.waitFor((el) => el.attrs.type === "error" && el.attrs.id === "lc-refused");
    const forged = inboundSmsParams({ from: THEM, to: ALICE_NUMBER, body: BODIES.badSignature, accountSid: ALICE_SID });
    const res = await postSigned(gw!.gateway.http, { authToken: "not-the-token", publicUrl: PUBLIC }, "/twilio/sms", forged);
    assert.equal(res.statusCode, 403);
    await drained();
  });

  test("every key has a TTL, or is a kind documented to live until removed", async () => {
    const kinds = await assertLifetimes();
    // The traffic above wrote every kind (so this test notices a kind that stops being written too).
    for (const k of [
      "links",
      "accounts",
      "webhook targets",
      "introduced sets",
      "streams, dead letters and their consumer groups",
      "idempotency keys",
      "message records",
      "provider-id maps",
      "media tokens",
      "per-user media lists",
    ]) {
      assert.ok(kinds.has(k), `no key of kind "${k}" after the traffic`);
    }
  });

  test("no message body is left in Redis once delivered (records carry none; streams are emptied)", async () => {
    const text = await storedText();
    for (const body of Object.values(BODIES)) assert.ok(!text.includes(body), `"${body}" is still stored in Redis`);
    // The record of a delivered message expires MESSAGE_RETENTION after its final state.
    const ids = (await allKeys()).filter((k) => k.startsWith("sb:v1:msg:"));
    const finals = [];
    for (const k of ids) if ((await r().hGet(k, "final")) === "1") finals.push(await r().ttl(k));
    assert.ok(finals.length >= 2, "the delivered SMS and the delivered webhook message");
    for (const ttl of finals) assert.ok(ttl <= MESSAGE_RETENTION);
  });

  test("the log has no body, token, secret or full phone number (at debug level)", async () => {
    assert.ok(logLines.length > 20, `only ${logLines.length} log lines`);
    assertCleanLog(logLines);
  });
});

/** No line carries a message body, a token, a secret or a full phone number (masked ones are fine). */
function assertCleanLog(lines: string[], extraBodies: string[] = []): void {
  const forbidden: [string, string][] = [
    ...Object.entries(BODIES).map(([k, v]): [string, string] => [`body ${k}`, v]),
    ...extraBodies.map((b): [string, string] => ["body", b]),
    ["admin token", ADMIN_TOKEN],
    ["webhook token", hookToken],
    ["webhook secret", hookSecret],
    ["secret path of the webhook URL", HOOK_PATH_SECRET],
    ["secret query of the webhook URL", HOOK_QUERY_SECRET],
    ["gateway's Twilio auth token", MAIN_TOKEN],
    ["alice's Twilio auth token", ALICE_TOKEN],
    ["bob's Twilio auth token", BOB_TOKEN],
    ["SECRETS_KEY", SECRETS_KEY],
    ["component secret", COMPONENT_SECRET],
    ["wrong admin token presented", "wrong-token-wrong-token"],
    ...mediaTokens.map((t): [string, string] => ["media token", t]),
    ...[ALICE_NUMBER, BOB_NUMBER, THEM].flatMap((n): [string, string][] => [
      [`phone number ${n}`, n],
      [`phone number ${n} without +`, n.slice(1)],
    ]),
  ];
  for (const line of lines) {
    for (const [what, secret] of forbidden) assert.ok(secret && !line.includes(secret), `the log contains the ${what}: ${line}`);
  }
}

// ---- dead letters: kept with their bodies (so they can be retried), trimmed after DEAD_LETTER_RETENTION

describe("dead-letter retention", () => {
  test("dead letters older than DEAD_LETTER_RETENTION are trimmed when the delivery starts (and periodically)", async () => {
    await gw?.stop();
    gw = undefined;
    const direct = await startRedisClient();
    const entry = (reason: string) => ({
      stream: keys.toXmppStream(0),
      queue: "to-xmpp",
      reason,
      at: "0",
      d: JSON.stringify({ kind: "chat", id: reason, from: CONTACT, to: "ghost@localhost", body: "old", mediaUrls: [], acceptedAt: 0 }),
    });
    const now = Date.now();
    await direct.xAdd(keys.deadLetters, `${now - 2 * 3600_000}-0`, entry("two hours old"));
    await direct.xAdd(keys.deadLetters, `${now - 600_000}-0`, entry("ten minutes old"));
    await direct.quit();
    await useGateway({ DEAD_LETTER_RETENTION: "3600" });
    await waitUntil(async () => (await r().xLen(keys.deadLetters)) === 1, { timeoutMs: 5000, what: "the old dead letter to be trimmed" });
    const left = (await r().xRange(keys.deadLetters, "-", "+")) ?? [];
    assert.deepEqual(
      left.map((e) => e.message.reason),
      ["ten minutes old"],
    );
    await r().del(keys.deadLetters);
  });
});

async function startRedisClient() {
  const { createClient } = await import("redis");
  const c = createClient({ url: redis.url });
  await c.connect();
  return c;
}

// ---- forgetting a user: admin DELETE and XEP-0077 <remove/>

describe("unlinking and unregistering delete what is kept about the user", () => {
  before(async () => {
    // Deliveries toward XMPP are held, so work addressed to the users stays queued.
    await useGateway({ TEST_HOLD_TO_XMPP: "true" }, { logLines: forgetLog });
  });

  const deadLetters = async () =>
    ((await gw!.admin("GET", "/api/v1/dead-letters?limit=1000")).json as { deadLetters: { reason: string; queue: string; messageId: string; from: string; to: string }[] }).deadLetters;

  test("admin DELETE /api/v1/users/{jid}: link, credentials, introductions, media, queued work", async () => {
    const jid = alice.bareJid;
    const tokens = await r().sMembers(keys.userMedia(jid));
    assert.deepEqual(tokens, mediaTokens, "the media she received are listed under her JID");
    assert.ok(existsSync(join(mediaDir, `${tokens[0]}.data`)));
    assert.equal(await r().exists(keys.introduced(jid)), 1);

    // Work waiting for her (held), and for bob (must stay).
    await inbound({ from: THEM, to: ALICE_NUMBER, body: "queued for alice", accountSid: ALICE_SID });
    await inbound({ from: THEM, to: BOB_NUMBER, body: "queued for bob", accountSid: BOB_SID });
    // Her texts: the provider is busy (503), so the first is retried in hand and the second waits behind it.
    twilio.failNext(50, { status: 503, message: "busy" });
    await alice.send(xml("message", { to: CONTACT, type: "chat", id: "lc-q-1" }, xml("body", {}, "queued sms one")));
    await alice.send(xml("message", { to: CONTACT, type: "chat", id: "lc-q-2" }, xml("body", {}, "queued sms two")));
    await waitUntil(async () => createsFrom(ALICE_NUMBER).filter((q) => q.form.Body === "queued sms one").length >= 2, { timeoutMs: 5000, what: "the first text to be retried" });
    // Her message to the bot: the receiver is down, so it is retried in hand too.
    receiver.down = true;
    await alice.send(xml("message", { to: `lifebot@${DOMAIN}`, type: "chat", id: "lc-q-3" }, xml("body", {}, "queued hook")));
    await waitUntil(async () => receiver.bodies.includes("queued hook"), { timeoutMs: 5000, what: "the webhook POST" });
    assert.equal((await queued()).filter((q) => q.item.to.startsWith(jid)).length, 1);

    const res = await gw!.admin("DELETE", `/api/v1/users/${jid}`);
    assert.equal(res.status, 204);

    assert.equal((await gw!.admin("GET", `/api/v1/users/${jid}`)).status, 404);
    assert.equal(
      await r().exists([
        keys.userNumbers(jid),
        keys.numberUsers(ALICE_NUMBER),
        keys.userAccount(jid),
        keys.account(ALICE_SID),
        keys.accountNumbers(ALICE_SID),
        keys.introduced(jid),
        keys.userMedia(jid),
      ]),
      0,
    );
    assert.equal(await r().sIsMember(keys.users, jid), 0);
    assert.equal(await r().hGet(keys.account(BOB_SID), "authToken").then(Boolean), true, "bob's credentials stay");
    // Her media are gone: files and URL.
    assert.ok(!existsSync(join(mediaDir, `${tokens[0]}.data`)) && !existsSync(join(mediaDir, `${tokens[0]}.json`)));
    assert.equal((await gw!.gateway.http.inject({ method: "GET", url: `/media/${tokens[0]}/picture.png` })).statusCode, 404);

    // Her queued work became dead letters with the reason; bob's deliveries (his introduction to THEM,
    // then the text) are still queued.
    const left = await queued();
    assert.deepEqual(
      left.map((q) => [q.item.kind, q.item.to, q.item.body]),
      [
        ["subscribe", bob.bareJid, undefined],
        ["chat", bob.bareJid, "queued for bob"],
      ],
    );
    const dls = await deadLetters();
    assert.equal(dls.filter((d) => d.reason === "recipient unlinked" && d.to === jid).length, 1);
    assert.equal(dls.filter((d) => d.reason === "sender unlinked" && d.queue === "outbound").length, 3, JSON.stringify(dls));

    // The jobs that were in hand stopped: nothing more reaches Twilio or the receiver for her (after
    // a request that was already on its way).
    await new Promise((res) => setTimeout(res, 300));
    const creates = createsFrom(ALICE_NUMBER).length;
    const hits = receiver.bodies.length;
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(createsFrom(ALICE_NUMBER).length, creates, "no more texts from her number");
    assert.ok(!createsFrom(ALICE_NUMBER).some((q) => q.form.Body === "queued sms two"));
    assert.equal(receiver.bodies.length, hits, "no more POSTs for her");
    receiver.down = false;

    // A second DELETE: nothing left to remove.
    assert.equal((await gw!.admin("DELETE", `/api/v1/users/${jid}`)).status, 404);
  });

  test("XEP-0077 <remove/>: the same for bob", async () => {
    const jid = bob.bareJid;
    await inbound({ from: THEM, to: BOB_NUMBER, body: "second for bob", accountSid: BOB_SID });
    assert.equal(await r().exists(keys.introduced(jid)), 1);
    assert.equal((await queued()).filter((q) => q.item.to.startsWith(jid)).length, 3, "an introduction and two texts");

    const res = await bob.iq(xml("iq", { type: "set", to: DOMAIN }, xml("query", { xmlns: NS_REGISTER }, xml("remove"))));
    assert.equal(res.attrs.type, "result", res.toString());

    assert.equal(await r().exists([keys.userNumbers(jid), keys.numberUsers(BOB_NUMBER), keys.userAccount(jid), keys.account(BOB_SID), keys.accountNumbers(BOB_SID), keys.introduced(jid)]), 0);
    assert.deepEqual(await queued(), []);
    const dls = await deadLetters();
    assert.deepEqual(
      dls.filter((d) => d.to === jid).map((d) => d.reason),
      ["recipient unlinked", "recipient unlinked", "recipient unlinked"],
    );
  });

  test("what was set aside for a forgotten user is retried only once they are linked again", async () => {
    const all = async () => ((await gw!.admin("GET", "/api/v1/dead-letters?limit=1000")).json as { deadLetters: { id: string; reason: string; queue: string; to: string }[] }).deadLetters;
    const forBob = (await all()).find((d) => d.reason === "recipient unlinked" && d.to === bob.bareJid)!;
    const aliceText = (await all()).find((d) => d.reason === "sender unlinked" && d.queue === "outbound" && d.to === CONTACT.split("@")[0])!;
    assert.ok(forBob && aliceText, "both kinds are there");

    const refused = await gw!.admin("POST", `/api/v1/dead-letters/${forBob.id}/retry`);
    assert.equal(refused.status, 409);
    assert.match((refused.json as { detail: string }).detail, /was unlinked; link them again/);
    const text = await gw!.admin("POST", `/api/v1/dead-letters/${aliceText.id}/retry`);
    assert.equal(text.status, 409, "her text would leave from a number that is no longer hers");
    assert.match((text.json as { detail: string }).detail, new RegExp(`${ALICE_NUMBER.replace("+", "\\+")} is no longer linked to ${alice.bareJid}`));
    assert.ok(
      (await all()).some((d) => d.id === forBob.id),
      "still a dead letter",
    );

    // Linked again: it may go.
    assert.equal((await gw!.admin("PUT", `/api/v1/users/${bob.bareJid}`, { phone: BOB_NUMBER })).status, 201);
    assert.equal((await gw!.admin("POST", `/api/v1/dead-letters/${forBob.id}/retry`)).status, 202);
    assert.ok(!(await all()).some((d) => d.id === forBob.id));
    assert.ok(
      (await queued()).some((q) => q.item.to.startsWith(bob.bareJid)),
      "queued toward bob again",
    );
  });

  test("afterwards, too, every key has a TTL or is a documented kind; the log stayed clean", async () => {
    await assertLifetimes();
    assert.ok(forgetLog.some((l) => l.includes("user forgotten")));
    assertCleanLog(forgetLog, ["queued for alice", "queued for bob", "second for bob", "queued sms one", "queued sms two", "queued hook"]);
  });
});
