// Issue 15, item 6: with SMS_PROVIDER=sandbox nothing signs Twilio's webhooks (the sandbox accepts any
// signature), so POST /twilio/sms and /twilio/status need the admin token there. Through real HTTP
// against the real gateway, Redis and XMPP server: without the token a forged text or status gets 401
// and nothing of it reaches the linked user; with the token both work; failed attempts count toward
// ADMIN_AUTH_FAILURES_PER_MINUTE like any admin call.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { inboundSmsParams, statusCallbackParams } from "../fakes/fake-twilio.js";
import { ADMIN_TOKEN, startGateway, type TestGateway } from "../support/gateway.js";
import { runMainToExit } from "../support/gateway-process.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { connectClient, xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const ALICE_NUMBER = "+15550001111";
const PHONE = "+15552223333";
const CONTACT = `${PHONE}@${DOMAIN}`;
/** Any AccountSid: the sandbox has no account, and a forger would not need one. */
const SID = `AC${"5".repeat(32)}`;
const FAILURES_PER_MINUTE = 30;
/** How long "nothing arrives" is watched for: the sandbox path delivers within a few hundred ms. */
const QUIET_MS = 1500;

let redis: RedisServer;
let server: XmppServer;
let gw: TestGateway;
let alice: TestClient;
let base: string;

interface SandboxView {
  id: string;
  direction: "out" | "in";
  body: string;
  status: string;
}

before(async () => {
  [redis, server] = await Promise.all([startRedis(), startXmppServer({ componentDomain: DOMAIN, componentSecret: "component-secret", users: [{ username: "alice", password: "alice-pw" }] })]);
  gw = await startGateway(
    {
      SMS_PROVIDER: "sandbox",
      XMPP_SERVICE: server.componentService,
      XMPP_DOMAIN: DOMAIN,
      XMPP_SECRET: "component-secret",
      REDIS_URL: redis.url,
      ADMIN_AUTH_FAILURES_PER_MINUTE: String(FAILURES_PER_MINUTE),
    },
    { listen: true },
  );
  base = gw.gateway.url().replace(/\/$/, "");
  await gw.waitOnline();
  assert.equal((await gw.admin("PUT", `/api/v1/users/${server.userJid("alice")}`, { phone: ALICE_NUMBER })).status, 201);
  alice = await connectClient({ server, username: "alice", password: "alice-pw" });
});

after(async () => {
  await gw?.stop();
  await alice?.stop();
  await Promise.allSettled([server?.stop(), redis?.stop()]);
});

function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(form).toString() });
}

const withToken = { authorization: `Bearer ${ADMIN_TOKEN}` };
/** What a forger might try instead of the token. */
const FORGERIES: [string, Record<string, string>][] = [
  ["no credentials", {}],
  ["a made-up Twilio signature", { "x-twilio-signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" }],
  ["a wrong admin token", { authorization: "Bearer not-the-admin-token-at-all" }],
];

async function assertUnauthorized(res: Response, what: string): Promise<void> {
  assert.equal(res.status, 401, `${what}: ${res.status} ${await res.clone().text()}`);
  assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/, what);
  assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer /, what);
  assert.match(((await res.json()) as { detail: string }).detail, /admin token/, what);
}

/** Follows GET /sandbox/events, calling `onMessage` for each message event; returns the closer. */
async function followSandbox(onMessage: (m: SandboxView) => void): Promise<() => void> {
  const ctrl = new AbortController();
  const res = await fetch(`${base}/sandbox/events`, { headers: withToken, signal: ctrl.signal });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  void (async () => {
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event.split("\n").find((l) => l.startsWith("data: "));
          if (event.startsWith("event: message") && data) onMessage(JSON.parse(data.slice("data: ".length)) as SandboxView);
        }
      }
    } catch {
      // aborted by the closer
    }
  })();
  return () => ctrl.abort();
}

const smsFrom = (body: string) => (el: StanzaElement) => el.name === "message" && el.attrs.from === CONTACT && el.getChildText("body") === body;
const receiptFor = (id: string) => (el: StanzaElement) => el.name === "message" && el.getChild("received", "urn:xmpp:receipts")?.attrs.id === id;
const errorFor = (id: string) => (el: StanzaElement) => el.name === "message" && el.attrs.type === "error" && el.attrs.id === id;

/**
 * alice texts the contact (asking for a receipt); the moment the sandbox has taken the text (status
 * queued, ~50 ms before it reports sent), `forge` posts a status callback for it. Resolves with the
 * answer to that callback.
 */
async function textAndForgeStatus(stanzaId: string, forge: (m: SandboxView) => Promise<Response>): Promise<Response> {
  const body = `status test ${stanzaId}`;
  let resolveAnswer!: (r: Response) => void;
  let rejectAnswer!: (e: unknown) => void;
  const answer = new Promise<Response>((res, rej) => ((resolveAnswer = res), (rejectAnswer = rej)));
  let forged = false;
  const close = await followSandbox((m) => {
    if (forged || m.direction !== "out" || m.body !== body) return;
    forged = true;
    forge(m).then(resolveAnswer, rejectAnswer);
  });
  try {
    await alice.send(xml("message", { to: CONTACT, type: "chat", id: stanzaId }, xml("body", {}, body), xml("request", { xmlns: "urn:xmpp:receipts" })));
    const timer = setTimeout(() => rejectAnswer(new Error(`the sandbox never took "${body}"`)), 10_000);
    try {
      return await answer;
    } finally {
      clearTimeout(timer);
    }
  } finally {
    close();
  }
}

test("POST /twilio/sms without the admin token: 401, nothing stored, nothing reaches the user", async () => {
  const form = inboundSmsParams({ from: PHONE, to: ALICE_NUMBER, body: "forged: send me your password", accountSid: SID });
  for (const [what, headers] of FORGERIES) await assertUnauthorized(await post("/twilio/sms", form, headers), what);
  await alice.expectNone(smsFrom(form.Body!), QUIET_MS);

  // Nothing of the refused posts was kept: the very same MessageSid, now with the token, is a new text
  // (a stored one would be acknowledged as a duplicate and not delivered again) and arrives once.
  const res = await post("/twilio/sms", form, withToken);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /<Response\/>/);
  await alice.waitFor(smsFrom(form.Body!), 10_000);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(alice.received.filter(smsFrom(form.Body!)).length, 1);
});

test("POST /twilio/status without the admin token: 401, and the forged failure never reaches the user", async () => {
  const answers: Response[] = [];
  const answer = await textAndForgeStatus("forge-1", async (m) => {
    // A well-formed Twilio SID (a forger has no way to learn the sandbox's own) and our message id.
    const form = statusCallbackParams({ sid: `SM${"7".repeat(32)}`, status: "undelivered", errorCode: 30003, from: ALICE_NUMBER, to: PHONE, accountSid: SID });
    for (const [, headers] of FORGERIES.slice(1)) answers.push(await post(`/twilio/status?id=${m.id}`, form, headers));
    return post(`/twilio/status?id=${m.id}`, form);
  });
  for (const [i, res] of [...answers, answer].entries()) await assertUnauthorized(res, `forged status #${i + 1}`);
  // The sandbox's own callbacks carry on: the text is delivered and alice gets her receipt, no error.
  await alice.waitFor(receiptFor("forge-1"), 10_000);
  await alice.expectNone(errorFor("forge-1"), QUIET_MS);
});

test("POST /twilio/status with the admin token is heard: answered as Twilio's callbacks are", async () => {
  // Past the token the route does its usual work: a callback for a message it does not know is
  // acknowledged (200, empty TwiML) and a malformed one is refused naming the field. (The sandbox's own
  // SB… ids never pass the Twilio SID check, so no callback can move a sandbox message.)
  const unknown = statusCallbackParams({ sid: `SM${"0".repeat(32)}`, status: "delivered", from: ALICE_NUMBER, to: PHONE, accountSid: SID });
  const res = await post("/twilio/status", unknown, withToken);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /<Response\/>/);
  const { MessageSid: _sid, ...noSid } = unknown;
  const bad = await post("/twilio/status", noSid, withToken);
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { detail: string }).detail, /MessageSid/);
});

test("the API documentation says the sandbox's /twilio/* routes take the admin token", async () => {
  const spec = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, Record<string, { security?: unknown }>> };
  for (const path of ["/twilio/sms", "/twilio/status"]) assert.deepEqual(spec.paths[path]?.post?.security, [{ adminToken: [] }], path);
});

test("a start with no SMS provider configured stops with one line explaining both choices", async () => {
  const { code, stderr } = await runMainToExit({ XMPP_DOMAIN: DOMAIN, XMPP_SECRET: "component-secret", ADMIN_TOKEN, REDIS_URL: redis.url, HTTP_PORT: "0" });
  assert.equal(code, 2, stderr);
  assert.equal(stderr.trim().split("\n").length, 1, stderr);
  assert.match(
    stderr,
    /^switchboard: invalid configuration: SMS_PROVIDER: no SMS provider is configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN \(and PUBLIC_URL\) to send real SMS with Twilio, or SMS_PROVIDER=sandbox to try the gateway with no SMS leaving it/,
  );
});

test("the sandbox refuses to listen beyond loopback unless SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN=true", async () => {
  const { code, stderr } = await runMainToExit({
    SMS_PROVIDER: "sandbox",
    HTTP_HOST: "0.0.0.0",
    HTTP_PORT: "0",
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: "component-secret",
    ADMIN_TOKEN,
    REDIS_URL: redis.url,
  });
  assert.equal(code, 2, stderr);
  assert.match(stderr, /^switchboard: invalid configuration: HTTP_HOST: 0\.0\.0\.0 is not a loopback address.*SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN=true/);
});

// Last: it leaves this client address locked out of every admin route for the rest of the minute.
test("failed tokens on /twilio/* count toward ADMIN_AUTH_FAILURES_PER_MINUTE: then 429 with Retry-After", async () => {
  const form = inboundSmsParams({ from: PHONE, to: ALICE_NUMBER, body: "guessing", accountSid: SID });
  let res: Response | undefined;
  for (let i = 0; i <= FAILURES_PER_MINUTE; i++) {
    res = await post(i % 2 ? "/twilio/status" : "/twilio/sms", form, { authorization: `Bearer guess-${i}` });
    if (res.status !== 401) break;
  }
  assert.ok(res);
  assert.equal(res.status, 429);
  assert.ok(Number(res.headers.get("retry-after")) >= 1);
  // Locked out even with the right token, like the admin API.
  assert.equal((await post("/twilio/sms", form, withToken)).status, 429);
  await alice.expectNone(smsFrom("guessing"), 500);
});
