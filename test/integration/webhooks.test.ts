// Webhook targets end to end: real Redis, real Prosody and XMPP clients, a real HTTP receiver.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { keys } from "../../src/adapters/redis/keys.js";
import { verifySignature } from "../../src/webhooks/verify.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { freePort } from "../support/ports.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { bodyOf, errorCondition, errorText, isErrorFor } from "../support/stanzas.js";
import { waitUntil } from "../support/wait.js";
import { connectClient, xml, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SECRETS_KEY = randomBytes(32).toString("base64");

interface Hit {
  headers: IncomingMessage["headers"];
  raw: string;
  json: { id: string; from: string; to: string; body: string; timestamp: string; media?: string[] };
  verified: boolean;
}

/** A receiver whose answers the tests script, one per request (default 200 without a reply). */
class Receiver {
  hits: Hit[] = [];
  answers: ((hit: Hit, res: ServerResponse) => void)[] = [];
  secret = "";
  server!: Server;
  port = 0;
  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      let raw = "";
      req.on("data", (d: Buffer) => (raw += d.toString()));
      req.on("end", () => {
        const hit: Hit = {
          headers: req.headers,
          raw,
          json: JSON.parse(raw) as Hit["json"],
          verified: verifySignature({ secret: this.secret, timestamp: String(req.headers["x-switchboard-timestamp"]), body: raw, signature: String(req.headers["x-switchboard-signature"]) }),
        };
        this.hits.push(hit);
        const answer = this.answers.shift();
        if (answer) answer(hit, res);
        else res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => this.server.listen(port, "127.0.0.1", r));
    this.port = (this.server.address() as AddressInfo).port;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }
}

let redis: RedisServer;
let server: XmppServer;
let gw: TestGateway;
let alice: TestClient;
let bob: TestClient;
const receiver = new Receiver();
let token = "";
let seq = 0;

before(async () => {
  [redis, server] = await Promise.all([
    startRedis(),
    startXmppServer({
      componentDomain: DOMAIN,
      componentSecret: "hooks",
      users: [
        { username: "alice", password: "alice-pw" },
        { username: "bob", password: "bob-pw" },
      ],
    }),
    receiver.start(),
  ]);
  gw = await startGateway({
    SMS_PROVIDER: "sandbox",
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: "hooks",
    REDIS_URL: redis.url,
    SECRETS_KEY,
    WEBHOOK_ALLOW_PRIVATE: "true", // the receiver is on loopback
    WEBHOOK_TIMEOUT_MS: "2000",
    WEBHOOK_DEADLINE_MS: "20000",
    OUTBOUND_RETRY_BASE_MS: "100",
  });
  await gw.waitOnline();
  const created = await gw.admin("PUT", "/api/v1/webhooks/deploybot", { url: receiver.url, allow: [`alice@${server.domain}`] });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const c = created.json as { token: string; secret: string };
  token = c.token;
  receiver.secret = c.secret;
  [alice, bob] = await Promise.all([connectClient({ server, username: "alice", password: "alice-pw", resource: "laptop" }), connectClient({ server, username: "bob", password: "bob-pw" })]);
});

after(async () => {
  await Promise.allSettled([alice?.stop(), bob?.stop()]);
  await gw?.stop();
  await Promise.allSettled([receiver.stop(), server?.stop(), redis?.stop()]);
});

const BOT = `deploybot@${DOMAIN}`;

async function say(client: TestClient, body: string, opts: { id?: string; receipt?: boolean } = {}): Promise<string> {
  const id = opts.id ?? `w${++seq}`;
  await client.send(xml("message", { to: BOT, type: "chat", id }, xml("body", {}, body), opts.receipt ? xml("request", { xmlns: "urn:xmpp:receipts" }) : undefined));
  return id;
}

async function hitFor(body: string, timeoutMs = 5000): Promise<Hit> {
  await waitUntil(async () => receiver.hits.some((h) => h.json.body === body), { timeoutMs, what: `POST with ${body}` });
  return receiver.hits.find((h) => h.json.body === body)!;
}

function postIn(body: unknown, opts: { token?: string; idempotencyKey?: string; name?: string } = {}) {
  return gw.gateway.http.inject({
    method: "POST",
    url: `/api/v1/webhooks/${opts.name ?? "deploybot"}/messages`,
    headers: { authorization: `Bearer ${opts.token ?? token}`, "content-type": "application/json", ...(opts.idempotencyKey ? { "idempotency-key": opts.idempotencyKey } : {}) },
    payload: JSON.stringify(body),
  });
}

describe("XMPP → webhook", () => {
  test("a message is POSTed signed, and the JSON reply comes back from the bot", async () => {
    receiver.answers.push((_h, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ reply: "deploying main to prod" })));
    await say(alice, "deploy main");
    const hit = await hitFor("deploy main");
    assert.equal(hit.verified, true, "the receiver verifies the signature");
    assert.match(String(hit.headers["x-switchboard-signature"]), /^sha256=[0-9a-f]{64}$/);
    assert.equal(hit.json.from, `alice@${server.domain}`);
    assert.equal(hit.json.to, BOT);
    assert.match(hit.json.id, /^[0-9A-Z]{26}$/);
    assert.ok(!Number.isNaN(Date.parse(hit.json.timestamp)));
    const reply = await alice.waitFor((el) => bodyOf(el) === "deploying main to prod");
    assert.equal(reply.attrs.from, BOT);
  });

  test("2xx without a reply → a receipt when one was asked for", async () => {
    await say(alice, "status?", { id: "rcpt-w", receipt: true });
    await hitFor("status?");
    const r = await alice.waitFor((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "rcpt-w");
    assert.equal(r.attrs.from, BOT);
  });

  test("4xx → an error reply with the status and an excerpt", async () => {
    receiver.answers.push((_h, res) => res.writeHead(422, { "content-type": "text/plain" }).end("unknown command: frobnicate"));
    const id = await say(alice, "frobnicate");
    const err = await alice.waitFor(isErrorFor(id));
    assert.equal(err.getChild("error")?.attrs.type, "cancel");
    assert.match(errorText(err), /422/);
    assert.match(errorText(err), /unknown command: frobnicate/);
  });

  test("500 twice then 200 → delivered once, same id, no error", async () => {
    receiver.answers.push(
      (_h, res) => res.writeHead(500).end("oops"),
      (_h, res) => res.writeHead(503).end("busy"),
    );
    const id = await say(alice, "flaky please", { receipt: true });
    await waitUntil(async () => receiver.hits.filter((h) => h.json.body === "flaky please").length >= 3, { timeoutMs: 10_000, what: "three tries" });
    const tries = receiver.hits.filter((h) => h.json.body === "flaky please");
    assert.equal(new Set(tries.map((h) => h.json.id)).size, 1, "one message id across tries");
    await alice.waitFor((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === id);
    await alice.expectNone(isErrorFor(id), 300);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(receiver.hits.filter((h) => h.json.body === "flaky please").length, 3, "no fourth POST");
  });

  test("a job read again after its answer was recorded (a stop before its acknowledgement) is not POSTed again", async () => {
    const id = await say(alice, "once only", { receipt: true });
    const hit = await hitFor("once only");
    await alice.waitFor((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === id);
    // The job as it was queued, back in a stream: what the gateway reads after stopping between
    // recording the 2xx and acknowledging the entry.
    const job = { channel: "webhook", id: hit.json.id, from: `alice@${server.domain}`, to: "deploybot", body: "once only", mediaUrls: [], acceptedAt: Date.now() };
    const stream = keys.outboxStream(0);
    await gw.gateway.redis.xAdd(stream, "*", { d: JSON.stringify(job) });
    await waitUntil(async () => (await gw.gateway.redis.xLen(stream)) === 0, { timeoutMs: 5000, what: "the entry handled and acknowledged" });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(receiver.hits.filter((h) => h.json.body === "once only").length, 1, "POSTed once");
    assert.equal(alice.received.filter((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === id).length, 1, "one receipt");
  });

  test("a sender not on the allow list gets auth/forbidden and nothing is POSTed", async () => {
    const before = receiver.hits.length;
    const id = await say(bob, "let me in");
    const err = await bob.waitFor(isErrorFor(id));
    assert.equal(errorCondition(err), "forbidden");
    assert.equal(err.getChild("error")?.attrs.type, "auth");
    assert.equal(receiver.hits.length, before);
  });

  test("the receiver down for a while: delivered after it returns, within the deadline", async () => {
    const port = receiver.port;
    await receiver.stop();
    const id = await say(alice, "are you back?", { receipt: true });
    await new Promise((r) => setTimeout(r, 1500)); // a few failed tries against a closed port
    await receiver.start(port);
    await hitFor("are you back?", 15_000);
    await alice.waitFor((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === id, 5000);
  });
});

describe("webhook → XMPP (message-in API)", () => {
  test("a POST with the target's token arrives from the bot", async () => {
    const res = await postIn({ to: `alice@${server.domain}`, body: "build #42 passed" });
    assert.equal(res.statusCode, 202);
    const { id } = JSON.parse(res.body) as { id: string };
    const msg = await alice.waitFor((el) => bodyOf(el) === "build #42 passed");
    assert.equal(msg.attrs.from, BOT);
    assert.equal(msg.attrs.id, id);
  });

  test("`text` is an alias of `body`; type and subject are kept", async () => {
    const res = await postIn({ to: `alice@${server.domain}`, text: "disk 91% full", type: "headline", subject: "Alert" });
    assert.equal(res.statusCode, 202);
    const msg = await alice.waitFor((el) => bodyOf(el) === "disk 91% full");
    assert.equal(msg.attrs.type, "headline");
    assert.equal(msg.getChildText("subject"), "Alert");
  });

  test("a wrong token is 401 and delivers nothing", async () => {
    const res = await postIn({ to: `alice@${server.domain}`, body: "forged" }, { token: "sbt_wrong" });
    assert.equal(res.statusCode, 401);
    assert.match(res.headers["content-type"] as string, /problem\+json/);
    await alice.expectNone((el) => bodyOf(el) === "forged", 500);
  });

  test("`to` not allowed for the target is 403", async () => {
    const res = await postIn({ to: `bob@${server.domain}`, body: "hi bob" });
    assert.equal(res.statusCode, 403);
    await bob.expectNone((el) => bodyOf(el) === "hi bob", 300);
  });

  test("bad input names the field", async () => {
    const missing = await postIn({ to: `alice@${server.domain}` });
    assert.equal(missing.statusCode, 400);
    assert.match(JSON.parse(missing.body).field as string, /body/);
    const badTo = await postIn({ to: "not a jid", body: "x" });
    assert.equal(badTo.statusCode, 400);
    assert.equal(JSON.parse(badTo.body).field, "body.to");
  });

  test("the same Idempotency-Key twice delivers once and answers the same id", async () => {
    const key = `key-${seq++}`;
    const a = await postIn({ to: `alice@${server.domain}`, body: "exactly once" }, { idempotencyKey: key });
    const b = await postIn({ to: `alice@${server.domain}`, body: "exactly once" }, { idempotencyKey: key });
    assert.equal(a.statusCode, 202);
    assert.equal(b.statusCode, 202);
    assert.equal(JSON.parse(a.body).id, JSON.parse(b.body).id);
    await alice.waitFor((el) => bodyOf(el) === "exactly once");
    await alice.expectNone((el) => bodyOf(el) === "exactly once" && alice.received.filter((e) => bodyOf(e) === "exactly once").length > 1, 700);
  });

  test("rotating the token invalidates the old one", async () => {
    const rotated = await gw.admin("POST", "/api/v1/webhooks/deploybot/token");
    assert.equal(rotated.status, 200);
    const fresh = (rotated.json as { token: string }).token;
    assert.notEqual(fresh, token);
    assert.equal((await postIn({ to: `alice@${server.domain}`, body: "old token" })).statusCode, 401);
    assert.equal((await postIn({ to: `alice@${server.domain}`, body: "new token" }, { token: fresh })).statusCode, 202);
    token = fresh;
  });
});

describe("XMPP citizenship of webhook contacts", () => {
  test("disco#items on the gateway lists the targets the asker may use", async () => {
    const q = { xmlns: "http://jabber.org/protocol/disco#items" };
    const forAlice = await alice.iq(xml("iq", { to: DOMAIN, type: "get" }, xml("query", q)));
    assert.deepEqual(
      forAlice
        .getChild("query")
        ?.getChildren("item")
        .map((i) => i.attrs.jid),
      [BOT],
    );
    const forBob = await bob.iq(xml("iq", { to: DOMAIN, type: "get" }, xml("query", q)));
    assert.deepEqual(forBob.getChild("query")?.getChildren("item") ?? [], []);
  });

  test("disco#info on the bot: a bot identity with its name; unknown names are item-not-found", async () => {
    const info = await alice.iq(xml("iq", { to: BOT, type: "get" }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    const identity = info.getChild("query")?.getChild("identity");
    assert.equal(identity?.attrs.type, "bot");
    assert.equal(identity?.attrs.name, "deploybot");
    const none = await alice.iq(xml("iq", { to: `nobot@${DOMAIN}`, type: "get" }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    assert.equal(errorCondition(none), "item-not-found");
  });

  test("subscribing to the bot works like any contact", async () => {
    await alice.iq(xml("iq", { type: "get" }, xml("query", { xmlns: "jabber:iq:roster" })));
    await alice.send(xml("presence", { to: BOT, type: "subscribe" }));
    await alice.waitFor((el) => el.name === "presence" && el.attrs.type === "subscribed" && el.attrs.from === BOT);
  });
});

describe("safety", () => {
  test("private and loopback URLs are refused when private targets are off", async (t) => {
    const strict = await startGateway({ SMS_PROVIDER: "sandbox", XMPP_SERVICE: `xmpp://127.0.0.1:${await freePort()}`, XMPP_DOMAIN: DOMAIN, XMPP_SECRET: "x", REDIS_URL: redis.url, SECRETS_KEY });
    t.after(() => strict.stop());
    for (const url of ["http://localhost:8080/hook", "http://127.0.0.1/hook", "http://[::ffff:127.0.0.1]/hook", "http://10.1.2.3/hook", "http://192.168.1.10/", "http://169.254.169.254/latest"]) {
      const res = await strict.admin("PUT", "/api/v1/webhooks/sneaky", { url, allow: ["alice@localhost"] });
      assert.equal(res.status, 400, url);
      assert.equal((res.json as { field: string }).field, "body.url", url);
    }
    assert.equal((await strict.admin("PUT", "/api/v1/webhooks/ftp", { url: "ftp://example.com/x", allow: ["alice@localhost"] })).status, 400);
  });
});

describe("back-pressure", () => {
  test("the message-in API answers 503 with Retry-After once a partition's backlog passes WEBHOOK_IN_MAX_BACKLOG", async (t) => {
    // Its own keyspace and no XMPP server: everything accepted waits, as when deliveries fall behind.
    const held = await startGateway({
      SMS_PROVIDER: "sandbox",
      XMPP_SERVICE: `xmpp://127.0.0.1:${await freePort()}`,
      XMPP_DOMAIN: DOMAIN,
      XMPP_SECRET: "x",
      REDIS_URL: `${redis.url}/3`,
      SECRETS_KEY,
      WEBHOOK_IN_MAX_BACKLOG: "3",
      TEST_HOLD_TO_XMPP: "true",
      WEBHOOK_ALLOW_PRIVATE: "true",
    });
    t.after(() => held.stop());
    const made = await held.admin("PUT", "/api/v1/webhooks/pager", { url: receiver.url, allow: [`alice@${server.domain}`] });
    assert.equal(made.status, 201);
    const pagerToken = (made.json as { token: string }).token;
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof held.gateway.http.inject>> | undefined;
    for (let i = 0; i < 10 && !refused; i++) {
      const res = await held.gateway.http.inject({
        method: "POST",
        url: "/api/v1/webhooks/pager/messages",
        headers: { authorization: `Bearer ${pagerToken}`, "content-type": "application/json" },
        payload: JSON.stringify({ to: `alice@${server.domain}`, body: `page ${i}` }),
      });
      statuses.push(res.statusCode);
      if (res.statusCode === 503) refused = res;
    }
    assert.deepEqual(statuses, [202, 202, 202, 202, 503], "accepted while at most 3 wait, then refused");
    assert.equal(refused?.headers["retry-after"], "30");
    assert.match(JSON.parse(refused!.body).detail, /waiting for delivery; retry later/);
  });
});

describe("deadline", () => {
  test("a receiver that never comes back: dead letter and an error reply", async (t) => {
    const closed = await freePort();
    const created = await gw.admin("PUT", "/api/v1/webhooks/gonebot", { url: `http://127.0.0.1:${closed}/hook`, allow: [`alice@${server.domain}`] });
    assert.equal(created.status, 201);
    t.after(() => gw.admin("DELETE", "/api/v1/webhooks/gonebot"));
    // The deadline is 20 s for this gateway; this target fails fast (connection refused) until then.
    const id = `gone-${seq++}`;
    await alice.send(xml("message", { to: `gonebot@${DOMAIN}`, type: "chat", id }, xml("body", {}, "anyone?")));
    const err = await alice.waitFor(isErrorFor(id), 30_000);
    assert.match(errorText(err), /not delivered|could not be reached/);
    const dls = (await gw.admin("GET", "/api/v1/dead-letters")).json as { deadLetters: { queue: string; to: string; reason: string }[] };
    assert.ok(
      dls.deadLetters.some((d) => d.queue === "outbound" && d.to === "gonebot"),
      JSON.stringify(dls),
    );
  });
});
