// GET /metrics moves when messages flow (issue 7, item 2): SMS both ways, a delivery receipt, a
// provider error, webhook messages both ways, and the gauges read from Redis, the journal and the
// component link. Real Redis, a real XMPP server, the fake Twilio and a local webhook receiver.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { inboundSmsParams, startFakeTwilio, statusCallbackParams, type FakeTwilio } from "../fakes/fake-twilio.js";
import { ADMIN_TOKEN, startGateway, type TestGateway } from "../support/gateway.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { signedPoster } from "../support/twilio-webhooks.js";
import { waitUntil } from "../support/wait.js";
import { connectClient, xml, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SID = `AC${"3".repeat(32)}`;
const TOKEN = "metrics-auth-token";
const PUBLIC = "https://gw.example.test";
const ALICE_NUMBER = "+15550003001";
const PHONE = "+15552223333";

let redis: RedisServer;
let server: XmppServer;
let twilio: FakeTwilio;
let gw: TestGateway;
let alice: TestClient;
let receiver: Server;
let hookToken = "";

before(async () => {
  receiver = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200).end());
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  [redis, server, twilio] = await Promise.all([
    startRedis(),
    startXmppServer({ componentDomain: DOMAIN, componentSecret: "metrics", users: [{ username: "alice", password: "alice-pw" }] }),
    startFakeTwilio({ accounts: { [SID]: TOKEN } }),
  ]);
  gw = await startGateway({
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: "metrics",
    REDIS_URL: redis.url,
    PUBLIC_URL: PUBLIC,
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: TOKEN,
    TWILIO_API_URL: twilio.url,
    SECRETS_KEY: randomBytes(32).toString("base64"),
    WEBHOOK_ALLOW_PRIVATE: "true",
  });
  await gw.waitOnline();
  assert.equal((await gw.admin("PUT", `/api/v1/users/alice@${server.domain}`, { phone: ALICE_NUMBER })).status, 201);
  const hook = await gw.admin("PUT", "/api/v1/webhooks/ci", { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, allow: [`alice@${server.domain}`] });
  hookToken = (hook.json as { token: string }).token;
  alice = await connectClient({ server, username: "alice", password: "alice-pw" });
});

after(async () => {
  await alice?.stop();
  await gw?.stop();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
  await Promise.allSettled([twilio?.stop(), server?.stop(), redis?.stop()]);
});

type Sample = { name: string; labels: Record<string, string>; value: number };

async function scrape(): Promise<Sample[]> {
  const res = await gw.gateway.http.inject({ method: "GET", url: "/metrics", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers["content-type"]), /text\/plain/);
  const samples: Sample[] = [];
  for (const line of res.body.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sample's value (0 when absent: a counter with no increments yet has no line). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value ?? 0;
}

async function moved(name: string, labels: Record<string, string>, from: number): Promise<number> {
  let now = from;
  await waitUntil(async () => (now = value(await scrape(), name, labels)) > from, { timeoutMs: 5000, what: `${name}${JSON.stringify(labels)} above ${from}` });
  return now;
}

const postSigned = signedPoster(() => gw.gateway.http, { authToken: TOKEN, publicUrl: PUBLIC });

test("counters, histograms and gauges move as messages flow", async () => {
  const t0 = await scrape();
  const msg = (direction: string, channel: string, outcome: string) => ["switchboard_messages_total", { direction, channel, outcome }] as const;

  // SMS in: accepted by the webhook, then delivered to the XMPP user.
  assert.equal((await postSigned("/twilio/sms", inboundSmsParams({ from: PHONE, to: ALICE_NUMBER, body: "metrics in", accountSid: SID }))).statusCode, 200);
  await alice.waitFor((el) => el.getChildText("body") === "metrics in");
  await moved(...msg("in", "sms", "accepted"), value(t0, ...msg("in", "sms", "accepted")));
  await moved(...msg("in", "sms", "delivered"), value(t0, ...msg("in", "sms", "delivered")));

  // SMS out: accepted, sent (a provider request timed), then delivered by the status callback.
  await alice.send(xml("message", { to: `${PHONE}@${DOMAIN}`, type: "chat", id: "m-out" }, xml("body", {}, "metrics out")));
  await waitUntil(async () => twilio.created.some((c) => c.body === "metrics out"), { timeoutMs: 5000, what: "the create" });
  await moved(...msg("out", "sms", "accepted"), value(t0, ...msg("out", "sms", "accepted")));
  await moved(...msg("out", "sms", "sent"), value(t0, ...msg("out", "sms", "sent")));
  assert.ok(value(await scrape(), "switchboard_provider_request_duration_seconds_count", { result: "ok" }) >= 1);
  const created = twilio.created.find((c) => c.body === "metrics out")!;
  const callback = twilio.requests.find((r) => r.form.Body === "metrics out")!.form.StatusCallback as string;
  const cbPath = callback.slice(PUBLIC.length);
  assert.equal((await postSigned(cbPath, statusCallbackParams({ sid: created.sid, status: "delivered", from: ALICE_NUMBER, to: PHONE, accountSid: SID }))).statusCode, 200);
  await moved(...msg("out", "sms", "delivered"), value(t0, ...msg("out", "sms", "delivered")));

  // A provider error code is counted by code.
  twilio.failNext(1, { status: 400, code: 21211 });
  await alice.send(xml("message", { to: `${PHONE}@${DOMAIN}`, type: "chat", id: "m-bad" }, xml("body", {}, "metrics bad")));
  await alice.waitFor((el) => el.attrs.type === "error" && el.attrs.id === "m-bad");
  await moved("switchboard_provider_errors_total", { code: "21211" }, value(t0, "switchboard_provider_errors_total", { code: "21211" }));
  await moved(...msg("out", "sms", "failed"), value(t0, ...msg("out", "sms", "failed")));

  // Webhooks both ways.
  await alice.send(xml("message", { to: `ci@${DOMAIN}`, type: "chat", id: "m-hook" }, xml("body", {}, "deploy")));
  await moved(...msg("out", "webhook", "delivered"), value(t0, ...msg("out", "webhook", "delivered")));
  assert.ok(value(await scrape(), "switchboard_webhook_request_duration_seconds_count", { result: "ok" }) >= 1);
  const posted = await gw.gateway.http.inject({
    method: "POST",
    url: "/api/v1/webhooks/ci/messages",
    headers: { authorization: `Bearer ${hookToken}`, "content-type": "application/json" },
    payload: JSON.stringify({ to: `alice@${server.domain}`, body: "build green" }),
  });
  assert.equal(posted.statusCode, 202);
  await alice.waitFor((el) => el.getChildText("body") === "build green");
  await moved(...msg("in", "webhook", "accepted"), value(t0, ...msg("in", "webhook", "accepted")));
  await moved(...msg("in", "webhook", "delivered"), value(t0, ...msg("in", "webhook", "delivered")));

  // Gauges: the link is up, the journal writable, queues drained.
  const now = await scrape();
  assert.equal(value(now, "switchboard_xmpp_connected"), 1);
  // Alone, this instance holds every lease: the link (with its fencing token) and all 8 outbound partitions.
  assert.equal(value(now, "switchboard_xmpp_link_lease_held"), 1);
  assert.ok(value(now, "switchboard_xmpp_link_lease_token") >= 1);
  assert.equal(value(now, "switchboard_outbound_partitions_held"), 8);
  assert.equal(value(now, "switchboard_instances_live"), 1);
  assert.equal(value(now, "switchboard_journal_writable"), 1);
  assert.equal(value(now, "switchboard_journal_pending"), 0);
  for (const queue of ["to-xmpp", "outbound"]) {
    assert.ok(
      now.some((s) => s.name === "switchboard_queue_depth" && s.labels.queue === queue),
      `queue depth of ${queue}`,
    );
    assert.ok(now.some((s) => s.name === "switchboard_queue_oldest_age_seconds" && s.labels.queue === queue));
  }
  assert.ok(now.some((s) => s.name === "switchboard_dead_letters"));
  assert.ok(now.some((s) => s.name === "switchboard_process_resident_memory_bytes"));
});

test("queue depth and age show work waiting", async () => {
  // Twilio asks us to wait (429, Retry-After: 2): the job stays in the outbound queue meanwhile.
  twilio.failNext(1, { status: 429, code: 20429, retryAfter: "2" });
  await alice.send(xml("message", { to: `${PHONE}@${DOMAIN}`, type: "chat", id: "m-wait" }, xml("body", {}, "metrics wait")));
  await waitUntil(
    async () => {
      const s = await scrape();
      return value(s, "switchboard_queue_depth", { queue: "outbound" }) >= 1 && value(s, "switchboard_queue_oldest_age_seconds", { queue: "outbound" }) >= 0.5;
    },
    { timeoutMs: 5000, what: "a waiting outbound job, half a second old" },
  );
  await waitUntil(async () => twilio.created.some((c) => c.body === "metrics wait"), { timeoutMs: 10_000, what: "the create after the wait" });
  await waitUntil(async () => value(await scrape(), "switchboard_queue_depth", { queue: "outbound" }) === 0, { timeoutMs: 5000, what: "the outbound queue drained" });
  assert.ok(value(await scrape(), "switchboard_provider_errors_total", { code: "20429" }) >= 1);
});

test("a reconnect of the component link is counted", async () => {
  await server.restart();
  await gw.waitOnline(15_000);
  await waitUntil(async () => value(await scrape(), "switchboard_xmpp_reconnects_total") >= 1, { timeoutMs: 5000, what: "a counted reconnect" });
  assert.equal(value(await scrape(), "switchboard_xmpp_connected"), 1);
});

test("/metrics needs the admin token", async () => {
  const res = await gw.gateway.http.inject({ method: "GET", url: "/metrics" });
  assert.equal(res.statusCode, 401);
});
