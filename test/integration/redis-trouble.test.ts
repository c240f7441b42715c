// Issue 3 "Redis trouble" and fault case 7(e), with real processes: redis-server (AOF), the XMPP server,
// and the gateway as its own process that the tests SIGKILL and start again. An inbound SMS that
// arrives while Redis is away is answered 200 at once, kept in the journal, and reaches the XMPP user
// exactly once after Redis is back, stamped with the time it arrived.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import { inboundSmsParams, startFakeTwilio, statusCallbackParams, type FakeTwilio } from "../fakes/fake-twilio.js";
import { PROCESS_ADMIN_TOKEN, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { signedWebhook } from "../support/twilio-webhooks.js";
import { waitUntil } from "../support/wait.js";
import { connectClient, xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SID = `AC${"3".repeat(32)}`;
const TOKEN = "fake-auth-token-3";
const PUBLIC = "https://gw.example.test";
const ALICE_NUMBER = "+15550003333";
const CONTACT_NUMBER = "+15552224444";
const COMMAND_TIMEOUT_MS = 2000;

let redis: RedisServer;
let server: XmppServer;
let twilio: FakeTwilio;
let gw: GatewayProcess;
let alice: TestClient;

/** Redis settings the test needs beyond the fixture's: every acknowledged write fsync'ed (the strict setting). */
async function redisCommand(args: string[]): Promise<string> {
  const c = createClient({ url: redis.url });
  await c.connect();
  try {
    return String(await c.sendCommand(args));
  } finally {
    c.destroy();
  }
}

before(async () => {
  [redis, server, twilio] = await Promise.all([
    startRedis({ appendonly: true }),
    startXmppServer({ componentDomain: DOMAIN, componentSecret: "component-secret", users: [{ username: "alice", password: "alice-pw" }] }),
    startFakeTwilio({ accounts: { [SID]: TOKEN } }),
  ]);
  // SIGKILL below must not lose the link written just before: fsync every write, as the strict setting of docs/operators/operations.md.
  await redisCommand(["CONFIG", "SET", "appendfsync", "always"]);
  gw = await startGatewayProcess({
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: "component-secret",
    REDIS_URL: redis.url,
    PUBLIC_URL: PUBLIC,
    SMS_PROVIDER: "twilio",
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: TOKEN,
    TWILIO_API_URL: twilio.url,
    REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
    JOURNAL_REPLAY_INTERVAL_MS: "200",
  });
  await gw.start();
  await gw.waitConnected();
  assert.equal((await gw.admin("PUT", `/api/v1/users/${server.userJid("alice")}`, { phone: ALICE_NUMBER })).status, 201);
  alice = await connectClient({ server, username: "alice", password: "alice-pw", resource: "phone" });
});

after(async () => {
  await alice?.stop();
  await gw?.terminate(5000);
  await Promise.allSettled([twilio?.stop(), server?.stop(), redis?.stop()]);
});

/** Posts a webhook signed the way Twilio signs it to the gateway process, over HTTP; `ms`: how long the answer took. */
async function postSigned(path: string, params: Record<string, string>): Promise<{ status: number; text: string; ms: number }> {
  const t0 = Date.now();
  const { body, headers } = signedWebhook({ authToken: TOKEN, publicUrl: PUBLIC }, path, params);
  const res = await gw.post(path, body, headers);
  return { ...res, ms: Date.now() - t0 };
}

const smsTo = (body: string) => inboundSmsParams({ from: CONTACT_NUMBER, to: ALICE_NUMBER, body, accountSid: SID });
const chatWithId = (id: string) => (el: StanzaElement) => el.name === "message" && el.attrs.id === id && el.attrs.type !== "error" && el.getChild("body") !== undefined;

interface Ready {
  status: string;
  redis: string;
  journal?: { writable: boolean; pending: number };
  xmpp: { connected: boolean };
}
async function readyz(): Promise<{ status: number; body: Ready }> {
  const r = await gw.ready();
  return { status: r.status, body: r.body as unknown as Ready };
}

async function waitReady(what: string, pred: (r: { status: number; body: Ready }) => boolean, timeoutMs = 15_000): Promise<void> {
  let last: unknown;
  try {
    await waitUntil(
      async () => {
        const r = await readyz().catch((err: Error) => ({ status: 0, body: { status: err.message, redis: "", xmpp: { connected: false } } }));
        last = r;
        return pred(r);
      },
      { timeoutMs, what, intervalMs: 100 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last /readyz: ${JSON.stringify(last)}; gateway log:\n${gw.log().split("\n").slice(-30).join("\n")}`);
  }
}

describe("Redis unreachable", () => {
  test("7(e): SMS while Redis is down → 200 fast, journaled; gateway SIGKILLed; Redis and gateway back → delivered once, stamped with its arrival", async () => {
    await redis.kill(); // a crash: no shutdown, AOF kept for the restart
    const params = smsTo("sent while Redis was down");
    const sid = params.MessageSid!;
    const arrived = Date.now();

    const first = await postSigned("/twilio/sms", params);
    assert.equal(first.status, 200, first.text);
    assert.match(first.text, /<Response\/>/);
    assert.ok(first.ms < COMMAND_TIMEOUT_MS + 1000, `answered in ${first.ms} ms`);

    // Twilio retries the same webhook (#rc=…): stored again in the journal, delivered once all the same.
    const retry = await postSigned("/twilio/sms", params);
    assert.equal(retry.status, 200);

    const ready = await readyz();
    assert.equal(ready.status, 200, "the journal keeps the gateway ready");
    assert.equal(ready.body.status, "degraded");
    assert.equal(ready.body.redis, "unreachable");
    assert.deepEqual(ready.body.journal, { writable: true, pending: 2 });
    // Without the admin token (a load balancer's probe): the same status code and the one word.
    const anyone = await fetch(`${gw.url}/readyz`);
    assert.equal(anyone.status, 200);
    assert.deepEqual(await anyone.json(), { status: "degraded" });

    // A status callback is not journaled: 503, so Twilio may retry it (per #rc/#rp).
    const status = await postSigned(
      "/twilio/status?id=01JTESTSTATUS0000000000000",
      statusCallbackParams({ sid: `SM${"9".repeat(32)}`, status: "delivered", from: ALICE_NUMBER, to: CONTACT_NUMBER, accountSid: SID }),
    );
    assert.equal(status.status, 503);

    await gw.kill();
    const killedAt = Date.now();
    await redis.restart();
    await gw.start(); // replays the journal on start-up

    const msg = await alice.waitFor(chatWithId(sid), 20_000);
    assert.equal(msg.attrs.from, `${CONTACT_NUMBER}@${DOMAIN}`);
    assert.equal(msg.getChildText("body"), "sent while Redis was down");
    const delay = msg.getChild("delay", "urn:xmpp:delay");
    assert.ok(delay, `a <delay/> on the late message: ${msg.toString()}`);
    assert.equal(delay.attrs.from, DOMAIN);
    const stamp = Date.parse(delay.attrs.stamp ?? "");
    assert.ok(stamp >= arrived - 1000 && stamp <= killedAt, `stamp ${delay.attrs.stamp} is the arrival time, not the replay's`);

    await alice.expectNone((el) => chatWithId(sid)(el) && el !== msg, 1500);
    await waitReady("journal drained", (r) => r.body.status === "ready" && r.body.journal?.pending === 0);
  });

  test("Redis killed and restarted under a running gateway: the journal is replayed when it reconnects", async () => {
    await redis.kill();
    const params = smsTo("while the gateway kept running");
    const res = await postSigned("/twilio/sms", params);
    assert.equal(res.status, 200);
    await waitReady("degraded", (r) => r.status === 200 && r.body.status === "degraded" && r.body.journal?.pending === 1);
    await redis.restart();
    const msg = await alice.waitFor(chatWithId(params.MessageSid!), 20_000);
    await alice.expectNone((el) => chatWithId(params.MessageSid!)(el) && el !== msg, 1000);
    await waitReady("ready again", (r) => r.body.status === "ready" && r.body.journal?.pending === 0);
  });

  /** Kills Redis for `run`, then brings it back and checks that `body` was never texted. */
  async function whileRedisIsDown(body: string, run: () => Promise<void>): Promise<void> {
    await redis.kill();
    try {
      await run();
    } finally {
      await redis.restart();
    }
    await waitReady("ready again", (r) => r.body.status === "ready");
    assert.equal(twilio.listRequests().filter((q) => q.form.Body === body).length, 0, "nothing was sent");
  }

  test("a text sent from XMPP while Redis is down is refused with 'try again', not 'internal error'", async () => {
    await whileRedisIsDown("anyone there?", async () => {
      await alice.send(xml("message", { to: `${CONTACT_NUMBER}@${DOMAIN}`, type: "chat", id: "while-redis-down" }, xml("body", {}, "anyone there?")));
      const bounce = await alice.waitFor((el) => el.name === "message" && el.attrs.id === "while-redis-down" && el.attrs.type === "error", 15_000);
      const error = bounce.getChild("error")!;
      assert.equal(error.attrs.type, "wait", bounce.toString());
      assert.ok(error.getChild("resource-constraint", "urn:ietf:params:xml:ns:xmpp-stanzas"), bounce.toString());
      assert.match(error.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas") ?? "", /cannot store messages right now.*not sent.*Try again/);
    });
  });

  test("an API call that needs Redis while it is down answers 503 with Retry-After, not 500", async () => {
    await whileRedisIsDown("api while redis down", async () => {
      // the journal covers Twilio's webhooks only; a test message from a user needs the database
      const res = await gw.admin("POST", "/api/v1/test-messages", { from: "alice@localhost", to: CONTACT_NUMBER, body: "api while redis down" });
      assert.equal(res.status, 503, JSON.stringify(res.json));
      assert.match((res.json as { detail: string }).detail, /database \(Redis\) is unavailable.*nothing was stored or sent/);
      const raw = await fetch(`${gw.url}/api/v1/users`, { headers: { authorization: `Bearer ${PROCESS_ADMIN_TOKEN}` } });
      assert.equal(raw.status, 503);
      assert.equal(raw.headers.get("retry-after"), "30");
      assert.match(raw.headers.get("content-type") ?? "", /^application\/problem\+json/);
    });
  });

  test("a gateway started while Redis is down comes up degraded, journals, and delivers once Redis is back", async () => {
    await gw.kill();
    await redis.kill();
    await gw.start(); // resolves on /readyz 200: the journal is enough to accept messages
    const ready = await readyz();
    assert.equal(ready.body.status, "degraded");
    assert.equal(ready.body.redis, "unreachable");
    // No XMPP link without Redis: whether another instance holds it cannot be known (its lease is there).
    assert.equal(ready.body.xmpp.connected, false);
    const params = smsTo("while the gateway started without Redis");
    const res = await postSigned("/twilio/sms", params);
    assert.equal(res.status, 200, res.text);
    assert.equal((await readyz()).body.journal?.pending, 1);
    await redis.restart();
    await gw.waitConnected();
    const msg = await alice.waitFor(chatWithId(params.MessageSid!), 20_000);
    await alice.expectNone((el) => chatWithId(params.MessageSid!)(el) && el !== msg, 1000);
    await waitReady("ready again", (r) => r.body.status === "ready" && r.body.journal?.pending === 0);
  });
});

describe("Redis silent (process stopped, socket open)", () => {
  test("a webhook still answers within the command timeout and the SMS arrives once Redis wakes", async () => {
    const pid = Number(/process_id:(\d+)/.exec(await redisCommand(["INFO", "server"]))?.[1]);
    assert.ok(pid > 0);
    const params = smsTo("while Redis was frozen");
    process.kill(pid, "SIGSTOP");
    try {
      const res = await postSigned("/twilio/sms", params);
      assert.equal(res.status, 200, res.text);
      assert.ok(res.ms < COMMAND_TIMEOUT_MS + 1500, `answered in ${res.ms} ms; Twilio gives up at 15000`);
      const ready = await readyz();
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, "degraded");
    } finally {
      process.kill(pid, "SIGCONT");
    }
    const msg = await alice.waitFor(chatWithId(params.MessageSid!), 20_000);
    await alice.expectNone((el) => chatWithId(params.MessageSid!)(el) && el !== msg, 1000);
    await waitReady("ready again", (r) => r.body.status === "ready" && r.body.journal?.pending === 0);
  });
});
