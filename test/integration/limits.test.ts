// Safe to expose (issue 6): who may use the gateway (ALLOWED_DOMAINS), abuse and cost limits, each
// with a readable refusal and a metric; short codes, TRUST_PROXY and /readyz's failed tokens (issue 15). Real Redis, a real XMPP server with a second, foreign-looking
// VirtualHost (mallory@elsewhere.example), the fake Twilio. Tests run in order and share the counters,
// so each limit is exercised by its own user, and the gateway-wide breaker comes last.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { inboundSmsParams, startFakeTwilio, type FakeTwilio } from "../fakes/fake-twilio.js";
import { startGateway, ADMIN_TOKEN, type TestGateway } from "../support/gateway.js";
import { freePort } from "../support/ports.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { errorCondition, errorText, errorType, isErrorFor } from "../support/stanzas.js";
import { postSigned } from "../support/twilio-webhooks.js";
import { connectClient, xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import { FOREIGN_DOMAIN, startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SID = `AC${"7".repeat(32)}`;
const TOKEN = "limits-auth-token";
const MALLORY = `mallory@${FOREIGN_DOMAIN}`;
const USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"] as const;
const NUMBERS = Object.fromEntries(USERS.map((u, i) => [u, `+1555010000${i + 1}`])) as Record<(typeof USERS)[number], string>;
const CONTACT = `+15552223333@${DOMAIN}`;
const THREE_SEGMENTS = "x".repeat(400); // GSM-7: 153 characters per segment once split

let redis: RedisServer;
let server: XmppServer;
let twilio: FakeTwilio;
let gw: TestGateway;
const clients = {} as Record<(typeof USERS)[number], TestClient>;
let mallory: TestClient;
let seq = 0;
let gatewayEnv: Record<string, string>;

before(async () => {
  [redis, server, twilio] = await Promise.all([
    startRedis(),
    startXmppServer({
      componentDomain: DOMAIN,
      componentSecret: "limits",
      users: [...USERS.map((u) => ({ username: u, password: `${u}-pw` })), { username: MALLORY, password: "mallory-pw" }],
    }),
    startFakeTwilio({ accounts: { [SID]: TOKEN } }),
  ]);
  gatewayEnv = {
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: DOMAIN, // ALLOWED_DOMAINS defaults to its parent: localhost
    XMPP_SECRET: "limits",
    REDIS_URL: redis.url,
    PUBLIC_URL: "https://gw.example.test",
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: TOKEN,
    TWILIO_API_URL: twilio.url,
    SECRETS_KEY: randomBytes(32).toString("base64"),
    WEBHOOK_ALLOW_PRIVATE: "true",
    USER_MESSAGES_PER_MINUTE: "5",
    USER_SEGMENTS_PER_DAY: "10",
    BREAKER_SEGMENTS_PER_HOUR: "20",
    WEBHOOK_IN_PER_MINUTE: "3",
    ADMIN_AUTH_FAILURES_PER_MINUTE: "3",
  };
  gw = await startGateway(gatewayEnv);
  await gw.waitOnline();
  for (const u of USERS) assert.equal((await gw.admin("PUT", `/api/v1/users/${u}@${server.domain}`, { phone: NUMBERS[u] })).status, 201);
  const conns = await Promise.all([...USERS.map((u) => connectClient({ server, username: u, password: `${u}-pw` })), connectClient({ server, username: MALLORY, password: "mallory-pw" })]);
  USERS.forEach((u, i) => (clients[u] = conns[i]!));
  mallory = conns[USERS.length]!;
});

after(async () => {
  await Promise.allSettled([...Object.values(clients).map((c) => c.stop()), mallory?.stop()]);
  await gw?.stop();
  await Promise.allSettled([twilio?.stop(), server?.stop(), redis?.stop()]);
});

/** Sends a chat and resolves with the error reply, or undefined once the fake Twilio created it. */
async function send(client: TestClient, body: string, to = CONTACT): Promise<StanzaElement | undefined> {
  const id = `l${++seq}`;
  const marker = `${body} #${id}`;
  await client.send(xml("message", { to, type: "chat", id }, xml("body", {}, marker)));
  const end = Date.now() + 5000;
  for (;;) {
    const err = client.received.find(isErrorFor(id));
    if (err) return err;
    if (twilio.created.some((m) => m.body === marker)) return undefined;
    if (Date.now() > end) throw new Error(`neither an SMS nor an error for ${id}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function metric(name: string): Promise<number> {
  const res = await gw.gateway.http.inject({ method: "GET", url: "/metrics", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.statusCode, 200);
  const line = res.body.split("\n").find((l) => l.startsWith(name));
  return line ? Number(line.split(" ").pop()) : 0;
}

describe("ALLOWED_DOMAINS: a foreign JID is refused everywhere", () => {
  test("sending a text: auth/forbidden naming the served domain, nothing sent", async () => {
    const before = twilio.requests.length;
    const err = await send(mallory, "cheap SMS please");
    assert.ok(err, "an error reply");
    assert.equal(errorCondition(err), "forbidden");
    assert.equal(errorType(err), "auth");
    assert.match(errorText(err), /serves users of localhost only/);
    assert.equal(twilio.requests.length, before);
  });

  test("registering: XEP-0077, ad-hoc and chat commands all say forbidden", async () => {
    const form = await mallory.iq(xml("iq", { type: "get", to: DOMAIN }, xml("query", { xmlns: "jabber:iq:register" })));
    assert.equal(form.attrs.type, "error");
    assert.equal(errorCondition(form), "forbidden");
    assert.match(errorText(form), /localhost/);
    const set = await mallory.iq(xml("iq", { type: "set", to: DOMAIN }, xml("query", { xmlns: "jabber:iq:register" }, xml("remove"))));
    assert.equal(errorCondition(set), "forbidden");
    const cmd = await mallory.iq(xml("iq", { type: "set", to: DOMAIN }, xml("command", { xmlns: "http://jabber.org/protocol/commands", node: "register", action: "execute" })));
    assert.equal(cmd.attrs.type, "error");
    assert.equal(errorCondition(cmd), "forbidden");
    const chat = await send(mallory, "register", DOMAIN);
    assert.equal(chat && errorCondition(chat), "forbidden");
    // Being a good XMPP citizen still: disco and ping answer everyone.
    const disco = await mallory.iq(xml("iq", { type: "get", to: DOMAIN }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    assert.equal(disco.attrs.type, "result");
  });

  test("reaching a webhook target, even one whose allow list names the foreign domain", async () => {
    const created = await gw.admin("PUT", "/api/v1/webhooks/opsbot", { url: "http://127.0.0.1:9/hook", allow: [`*@${FOREIGN_DOMAIN}`, `*@${server.domain}`] });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const err = await send(mallory, "deploy", `opsbot@${DOMAIN}`);
    assert.equal(err && errorCondition(err), "forbidden");
    // …and the message-in API does not deliver to a foreign JID either.
    const token = (created.json as { token: string }).token;
    const res = await gw.gateway.http.inject({
      method: "POST",
      url: "/api/v1/webhooks/opsbot/messages",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      payload: JSON.stringify({ to: MALLORY, body: "hi" }),
    });
    assert.equal(res.statusCode, 403);
    assert.match(res.body, /serves \(localhost\)|localhost/);
  });

  test("the admin API will not link a foreign JID", async () => {
    const res = await gw.admin("PUT", `/api/v1/users/${MALLORY}`, { phone: "+15550199999" });
    assert.equal(res.status, 400);
    assert.match(JSON.stringify(res.json), /ALLOWED_DOMAINS/);
  });
});

describe("per-user limits", () => {
  test("rate: the message past USER_MESSAGES_PER_MINUTE is refused with policy-violation and a wait", async () => {
    for (let i = 0; i < 5; i++) assert.equal(await send(clients.alice, `burst ${i}`), undefined, `message ${i} goes out`);
    const before = await metric('switchboard_limit_refusals_total{limit="user_rate"}');
    const err = await send(clients.alice, "one too many");
    assert.ok(err);
    assert.equal(errorCondition(err), "policy-violation");
    assert.equal(errorType(err), "wait");
    assert.match(errorText(err), /at most 5 messages a minute.*send it again in \d+ seconds/);
    assert.equal(await metric('switchboard_limit_refusals_total{limit="user_rate"}'), before + 1);
    // Another user is not affected.
    assert.equal(await send(clients.dave, "unrelated"), undefined);
  });

  test("daily quota in segments: a message that would pass it is refused and costs nothing", async () => {
    for (let i = 0; i < 3; i++) assert.equal(await send(clients.bob, `${THREE_SEGMENTS} ${i}`), undefined);
    const err = await send(clients.bob, `${THREE_SEGMENTS} one more`);
    assert.ok(err);
    assert.equal(errorCondition(err), "policy-violation");
    assert.match(errorText(err), /daily allowance of 10 SMS segments.*needs 3/);
    // What was refused was not charged: a one-segment text still fits.
    assert.equal(await send(clients.bob, "short"), undefined);
  });

  test("destinations: other countries and premium-rate numbers are refused with modify/policy-violation, saying why", async () => {
    const cases: [string, RegExp][] = [
      ["+447700900123", /United Kingdom.*numbers in United States only/],
      ["+18765551234", /Jamaica/],
      ["+19005551234", /premium-rate/],
      ["+882345678901", /not tied to a country/],
    ];
    for (const [number, why] of cases) {
      const err = await send(clients.carol, "hello", `${number}@${DOMAIN}`);
      assert.ok(err, `${number} is refused`);
      // A local policy refusal (RFC 6120 §8.3.3.12), like the gateway's other policy refusals.
      assert.equal(errorCondition(err), "policy-violation", number);
      assert.equal(errorType(err), "modify", number);
      assert.match(errorText(err), why);
    }
    assert.equal(await send(clients.carol, "a US mobile is fine", `+14155552671@${DOMAIN}`), undefined);
    assert.ok((await metric('switchboard_limit_refusals_total{limit="destination_country"}')) >= 3);
    assert.ok((await metric('switchboard_limit_refusals_total{limit="destination_type"}')) >= 1);
  });

  test("the same refusals through the admin API's test message are 403 problems, not 429", async () => {
    const res = await gw.admin("POST", "/api/v1/test-messages", { from: `ivan@${server.domain}`, to: "+447700900123", body: "hello" });
    assert.equal(res.status, 403, JSON.stringify(res.json));
    const problem = res.json as { title: string; detail: string };
    assert.equal(problem.title, "Forbidden");
    assert.match(problem.detail, /United Kingdom.*numbers in United States only/);
    assert.equal(res.headers["retry-after"], undefined);
  });
});

describe("short codes (SHORT_CODES)", () => {
  test("refused by default with modify/policy-violation naming SHORT_CODES; nothing is sent", async () => {
    const before = twilio.requests.length;
    const counted = await metric('switchboard_limit_refusals_total{limit="short_code"}');
    // 72975 is in the US plan's short-code range: ALLOWED_COUNTRIES (US) alone would let it through.
    const err = await send(clients.ivan, "STOP", `72975@${DOMAIN}`);
    assert.ok(err, "an error reply");
    assert.equal(errorCondition(err), "policy-violation");
    assert.equal(errorType(err), "modify");
    assert.match(errorText(err), /^72975 is a short code; this gateway does not text short codes \(they can be premium-rate\)\. Its operator can allow them with SHORT_CODES\.$/);
    assert.equal(twilio.requests.length, before, "nothing went to Twilio");
    assert.equal(await metric('switchboard_limit_refusals_total{limit="short_code"}'), counted + 1);
  });

  test("a text from a short code still arrives (only sending to one is refused)", async () => {
    const params = inboundSmsParams({ from: "72975", to: NUMBERS.ivan, body: "Your code is 123456", accountSid: SID });
    const res = await postSigned(gw.gateway.http, { authToken: TOKEN, publicUrl: "https://gw.example.test" }, "/twilio/sms", params);
    assert.equal(res.statusCode, 200, res.body);
    const msg = await clients.ivan.waitFor((el) => el.name === "message" && el.getChildText("body") === "Your code is 123456", 10_000);
    assert.equal(msg.attrs.from, `72975@${DOMAIN}`);
  });
});

describe("HTTP limits", () => {
  test("message-in API: per-token rate, then 429 with Retry-After", async () => {
    const created = await gw.admin("PUT", "/api/v1/webhooks/alertbot", { url: "http://127.0.0.1:9/hook", allow: [`dave@${server.domain}`] });
    const token = (created.json as { token: string }).token;
    const post = () =>
      gw.gateway.http.inject({
        method: "POST",
        url: "/api/v1/webhooks/alertbot/messages",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        payload: JSON.stringify({ to: `dave@${server.domain}`, body: "disk full" }),
      });
    for (let i = 0; i < 3; i++) assert.equal((await post()).statusCode, 202);
    const limited = await post();
    assert.equal(limited.statusCode, 429);
    assert.match(String(limited.headers["content-type"]), /problem\+json/);
    assert.ok(Number(limited.headers["retry-after"]) >= 1);
  });

  test("admin API: failed tokens are limited per client address", async () => {
    const call = (token: string, remoteAddress: string) => gw.gateway.http.inject({ method: "GET", url: "/api/v1/users", remoteAddress, headers: { authorization: `Bearer ${token}` } });
    for (let i = 0; i < 3; i++) assert.equal((await call("guess-" + i, "203.0.113.9")).statusCode, 401);
    const limited = await call("guess-4", "203.0.113.9");
    assert.equal(limited.statusCode, 429);
    assert.ok(Number(limited.headers["retry-after"]) >= 1);
    // Locked out, even with the right token, until the window ends; other addresses are not.
    assert.equal((await call(ADMIN_TOKEN, "203.0.113.9")).statusCode, 429);
    assert.equal((await call(ADMIN_TOKEN, "198.51.100.7")).statusCode, 200);
  });

  test("/readyz: without a token never counted; a wrong token shows only the status and counts as a failed admin-token check", async () => {
    const readyz = (remoteAddress: string, token?: string) => gw.gateway.http.inject({ method: "GET", url: "/readyz", remoteAddress, headers: token ? { authorization: `Bearer ${token}` } : {} });
    const users = (remoteAddress: string) => gw.gateway.http.inject({ method: "GET", url: "/api/v1/users", remoteAddress, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    // Probes carry no token: as many as they like, never counted, never refused.
    for (let i = 0; i < 5; i++) {
      const r = await readyz("203.0.113.20");
      assert.equal(r.statusCode, 200);
      assert.deepEqual(r.json(), { status: "ready" });
    }
    assert.equal((await users("203.0.113.20")).statusCode, 200, "probes did not lock the address out");
    // Guesses: the short body with the real status code, each one counted like on the admin API.
    for (let i = 0; i < 3; i++) {
      const r = await readyz("203.0.113.21", `guess-${i}`);
      assert.equal(r.statusCode, 200);
      assert.deepEqual(r.json(), { status: "ready" });
    }
    assert.equal((await users("203.0.113.21")).statusCode, 429, "the guesses on /readyz count toward ADMIN_AUTH_FAILURES_PER_MINUTE");
    // Locked out, /readyz tells nothing more even for the right token (no oracle), and keeps probing.
    const locked = await readyz("203.0.113.21", ADMIN_TOKEN);
    assert.equal(locked.statusCode, 200);
    assert.deepEqual(locked.json(), { status: "ready" });
    assert.deepEqual((await readyz("203.0.113.21")).json(), { status: "ready" });
    // Another address with the right token gets the details.
    const full = await readyz("203.0.113.22", ADMIN_TOKEN);
    assert.equal(full.statusCode, 200);
    assert.equal((full.json() as { redis: string }).redis, "ok");
  });

  test("TRUST_PROXY names the proxies: rotating X-Forwarded-For does not escape the failed-token limit; true is refused at start", async (t) => {
    const proxied = {
      ...gatewayEnv,
      // Its own Redis database and no XMPP server: this gateway takes no part in the other tests' traffic.
      REDIS_URL: `${redis.url}/1`,
      XMPP_SERVICE: `xmpp://127.0.0.1:${await freePort()}`,
      INSTANCE_ID: "limits-trust-proxy",
    };
    await assert.rejects(startGateway({ ...proxied, TRUST_PROXY: "true" }), /TRUST_PROXY: true would let any client choose its own address with X-Forwarded-For.*10\.0\.0\.0\/8/);
    await assert.rejects(startGateway({ ...proxied, TRUST_PROXY: "1" }), /TRUST_PROXY: a hop count \(1\)/);
    const g = await startGateway({ ...proxied, TRUST_PROXY: "10.0.0.0/8" });
    t.after(() => g.stop());
    const call = (token: string, forwardedFor: string, remoteAddress = "10.0.0.5") =>
      g.gateway.http.inject({ method: "GET", url: "/api/v1/users", remoteAddress, headers: { authorization: `Bearer ${token}`, "x-forwarded-for": forwardedFor } });
    // The proxy (10.0.0.5) appends the address it saw, 203.0.113.50; what comes before it the client wrote.
    for (let i = 0; i < 3; i++) assert.equal((await call(`guess-${i}`, `198.51.100.${i}, 203.0.113.50`)).statusCode, 401);
    assert.equal((await call("guess-3", "198.51.100.99, 203.0.113.50")).statusCode, 429);
    assert.equal((await call(ADMIN_TOKEN, "192.0.2.1, 203.0.113.50")).statusCode, 429, "locked out whatever it writes");
    // Another client behind the same proxy is not.
    assert.equal((await call(ADMIN_TOKEN, "203.0.113.51")).statusCode, 200);
    // A client reaching the gateway directly (not from a listed proxy) cannot name itself either.
    for (let i = 0; i < 3; i++) assert.equal((await call(`guess-${i}`, `192.0.2.${i + 10}`, "198.51.100.77")).statusCode, 401);
    assert.equal((await call(ADMIN_TOKEN, "192.0.2.99", "198.51.100.77")).statusCode, 429);
  });
});

describe("the gateway-wide breaker", () => {
  test("trips on segments per hour, stops all sending, tells the operator, and can be reset", async () => {
    assert.equal(await metric("switchboard_breaker_tripped"), 0);
    let tripped: StanzaElement | undefined;
    let sent = 0;
    // Three users take turns, so that none meets their own rate or daily quota first.
    const senders = [clients.erin, clients.frank, clients.grace, clients.erin, clients.frank, clients.grace, clients.erin, clients.frank, clients.grace];
    for (const c of senders) {
      tripped = await send(c, THREE_SEGMENTS);
      if (tripped) break;
      sent++;
    }
    assert.ok(tripped, `the breaker tripped (after ${sent} two-segment texts)`);
    assert.equal(errorCondition(tripped), "resource-constraint");
    assert.match(errorText(tripped), /stopped sending.*limit of 20 SMS segments an hour.*operator/);
    // Everyone is stopped now, even with a one-segment text.
    const after = await send(clients.heidi, "tiny");
    assert.equal(after && errorCondition(after), "resource-constraint");
    const ready = (await gw.admin("GET", "/readyz")).json as { status: string; breaker?: { tripped: boolean; note?: string } };
    assert.equal(ready.status, "ready", "inbound still flows: the gateway stays ready");
    assert.equal(ready.breaker?.tripped, true);
    assert.match(ready.breaker?.note ?? "", /sending stopped/);
    assert.equal(await metric("switchboard_breaker_tripped"), 1);
    assert.equal(await metric("switchboard_breaker_trips_total"), 1);
    const status = (await gw.admin("GET", "/api/v1/breaker")).json as { tripped: boolean };
    assert.equal(status.tripped, true);

    assert.equal((await gw.admin("DELETE", "/api/v1/breaker")).status, 204);
    assert.equal(await send(clients.heidi, "after the reset"), undefined);
    assert.equal(await metric("switchboard_breaker_tripped"), 0);
  });
});

describe("SHORT_CODES=<list>", () => {
  test("allows the listed short codes only; another is refused saying so", async () => {
    await gw.stop();
    gw = await startGateway({ ...gatewayEnv, SHORT_CODES: "72975,33733" });
    await gw.waitOnline();
    assert.equal(await send(clients.dave, "HELP", `72975@${DOMAIN}`), undefined, "a listed short code is texted");
    assert.equal(twilio.created.at(-1)?.to, "72975");
    const err = await send(clients.dave, "HELP", `12345@${DOMAIN}`);
    assert.ok(err, "an unlisted one is refused");
    assert.equal(errorCondition(err), "policy-violation");
    assert.equal(errorType(err), "modify");
    assert.match(errorText(err), /^12345 is a short code this gateway does not text: it texts only the short codes its operator listed.*SHORT_CODES/);
  });
});
