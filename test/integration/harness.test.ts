// The test harness itself: real Redis, a real XMPP server (Prosody, or ejabberd with
// XMPP_SERVER=ejabberd), logged-in clients, and the component listener rendered from
// deploy/templates.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { createClient } from "redis";

import { startRedis, type RedisServer } from "../support/redis.js";
import { connectClient, xml, type TestClient } from "../support/xmpp-client.js";
import { componentStreamHeader, startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const COMPONENT_DOMAIN = "sms.localhost";
const COMPONENT_SECRET = "harness-secret";
const PING_NS = "urn:xmpp:ping";
const STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas";

let redis: RedisServer;
let server: XmppServer;
const clients: TestClient[] = [];

async function login(username: string, password: string, resource?: string): Promise<TestClient> {
  const c = await connectClient({ server, username, password, ...(resource === undefined ? {} : { resource }) });
  clients.push(c);
  return c;
}

before(async () => {
  [redis, server] = await Promise.all([
    startRedis(),
    startXmppServer({
      componentDomain: COMPONENT_DOMAIN,
      componentSecret: COMPONENT_SECRET,
      users: [
        { username: "alice", password: "alice-pw" },
        { username: "bob", password: "bob-pw" },
      ],
    }),
  ]);
});

after(async () => {
  await Promise.allSettled(clients.map((c) => c.stop()));
  await Promise.allSettled([server?.stop(), redis?.stop()]);
});

test("redis answers PING and persists with AOF across a crash", async () => {
  assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
  const r = createClient({ url: redis.url });
  r.on("error", () => undefined); // the kill below drops the connection
  await r.connect();
  try {
    assert.equal(await r.ping(), "PONG");
    assert.equal(await r.configGet("appendonly").then((c) => c.appendonly), "yes");
    await r.set("harness:k", "v");
  } finally {
    r.destroy();
  }
  await redis.kill();
  await redis.restart();
  const r2 = createClient({ url: redis.url });
  await r2.connect();
  try {
    assert.equal(await r2.get("harness:k"), "v", "AOF replayed after SIGKILL");
  } finally {
    r2.destroy();
  }
});

test(`two users log in and chat (${process.env.XMPP_SERVER ?? "prosody"})`, async () => {
  const alice = await login("alice", "alice-pw");
  const bob = await login("bob", "bob-pw", "desk");
  assert.equal(alice.bareJid, `alice@${server.domain}`);
  assert.equal(bob.jid, `bob@${server.domain}/desk`);
  assert.ok(alice.jid.startsWith(`${alice.bareJid}/`));

  await alice.send(xml("message", { to: bob.bareJid, type: "chat", id: "harness-1" }, xml("body", {}, "hello bob")));
  const msg = await bob.waitFor((el) => el.name === "message" && el.getChildText("body") === "hello bob");
  assert.equal(msg.attrs.id, "harness-1");
  assert.equal(msg.attrs.from, alice.jid);
  // already received: waitFor looks back first
  assert.equal(await bob.waitFor((el) => el.attrs.id === "harness-1", 10), msg);
  await bob.expectNone((el) => el.getChildText("body") === "never sent", 100);
  await assert.rejects(
    bob.expectNone((el) => el.attrs.id === "harness-1", 10),
    /already received/,
  );
  await assert.rejects(
    bob.waitFor((el) => el.attrs.id === "nope", 50),
    /no matching stanza within 50 ms.*received \d+ stanza/s,
  );
});

test("an IQ ping to the server gets a result; an IQ error comes back as a stanza, not a throw", async () => {
  const alice = await login("alice", "alice-pw");
  const pong = await alice.iq(xml("iq", { type: "get", to: server.domain }, xml("ping", { xmlns: PING_NS })));
  assert.equal(pong.attrs.type, "result");
  assert.equal(pong.attrs.from, server.domain);

  // No component is connected: the server answers for it with an error, which differs by server.
  // Prosody: wait/remote-server-timeout "Component unavailable" (+ its <not-connected/>); ejabberd
  // (s2s_access: none, so it does not try server-to-server for the domain): auth/forbidden.
  const err = await alice.iq(xml("iq", { type: "get", to: COMPONENT_DOMAIN }, xml("ping", { xmlns: PING_NS })));
  assert.equal(err.attrs.type, "error");
  const error = err.getChild("error");
  const condition = error?.getChildElements().find((c) => c.getNS() === STANZAS_NS && c.name !== "text");
  assert.ok(condition, err.toString());
  if (server.kind === "prosody") {
    assert.equal(condition.name, "remote-server-timeout", err.toString());
    assert.equal(error?.attrs.type, "wait");
  } else {
    assert.equal(condition.name, "forbidden", err.toString());
    assert.equal(error?.attrs.type, "auth");
  }
});

test("the component listener from the template answers a jabber:component:accept stream", async () => {
  assert.equal(server.componentService, `xmpp://127.0.0.1:${server.componentPort}`);
  const header = await componentStreamHeader(server.componentPort, COMPONENT_DOMAIN);
  assert.match(header, /<stream:stream\b[^>]*\bxmlns=['"]jabber:component:accept['"]/);
  assert.match(header, new RegExp(`\\bfrom=['"]${COMPONENT_DOMAIN.replace(".", "\\.")}['"]`));
  assert.match(header, /\bid=['"][^'"]+['"]/, "a stream id to hash the handshake with");
});

test("restart keeps accounts; addUser works on a running server", async () => {
  await server.addUser("carol", "carol-pw");
  const carol = await login("carol", "carol-pw");
  await carol.stop();
  await server.restart();
  const alice = await login("alice", "alice-pw");
  assert.equal(alice.isOnline(), true);
  const carolAgain = await login("carol", "carol-pw");
  assert.equal(carolAgain.isOnline(), true);
  await assert.rejects(connectClient({ server, username: "carol", password: "wrong" }), /not-authorized/);
});
