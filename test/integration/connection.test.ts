// The component link: fatal configuration errors, conflict, and surviving a server restart.
import assert from "node:assert/strict";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { after, before, test } from "node:test";
import { startGateway } from "../support/gateway.js";
import { runMainToExit } from "../support/gateway-process.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { connectClient, xml, type StanzaElement } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SECRET = "the-right-secret";
/** the server startXmppServer picks (XMPP_SERVER, default prosody) */
const KIND = process.env.XMPP_SERVER ?? "prosody";

let redis: RedisServer;
let server: XmppServer;

before(async () => {
  [redis, server] = await Promise.all([startRedis(), startXmppServer({ componentDomain: DOMAIN, componentSecret: SECRET, users: [{ username: "alice", password: "alice-pw" }] })]);
});
after(async () => {
  await Promise.allSettled([server?.stop(), redis?.stop()]);
});

function env(over: Record<string, string> = {}): Record<string, string> {
  return { SMS_PROVIDER: "sandbox", XMPP_SERVICE: server.componentService, XMPP_DOMAIN: DOMAIN, XMPP_SECRET: SECRET, REDIS_URL: redis.url, ...over };
}

/** The real entry point until it exits, with a valid admin token and any free port unless `extraEnv` says otherwise. */
const runMain = (extraEnv: Record<string, string>, timeoutMs?: number) => runMainToExit({ ADMIN_TOKEN: "test-admin-token-0123456789", HTTP_PORT: "0", ...extraEnv }, timeoutMs);

test("a wrong component secret ends the process with one line naming XMPP_SECRET", async () => {
  const { code, stderr } = await runMain(env({ XMPP_SECRET: "wrong" }));
  assert.notEqual(code, 0);
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, /XMPP_SECRET/);
});

test("a wrong domain ends the process with one line naming XMPP_DOMAIN", async () => {
  const { code, stderr } = await runMain(env({ XMPP_DOMAIN: "nope.localhost" }));
  assert.notEqual(code, 0);
  assert.match(stderr.trim(), /^switchboard: fatal: .*XMPP_DOMAIN/);
  assert.equal(stderr.trim().split("\n").length, 1, stderr);
});

test("a missing variable is a start-up error naming it", async () => {
  const { code, stderr } = await runMain({ XMPP_DOMAIN: DOMAIN, XMPP_SECRET: SECRET, ADMIN_TOKEN: "" });
  assert.equal(code, 2);
  assert.match(stderr, /ADMIN_TOKEN: is required/);
});

test("TRUST_PROXY=true is a start-up error naming it and what to set instead", async () => {
  // Today's gateway would start (and run until the timeout): the bound is short of the default.
  const { code, stderr } = await runMain(env({ TRUST_PROXY: "true" }), 30_000);
  assert.equal(code, 2);
  assert.match(
    stderr,
    /TRUST_PROXY: true would let any client choose its own address with X-Forwarded-For \(and so escape the per-address limits\); set the addresses of the proxies in front of the gateway instead \(e\.g\. 10\.0\.0\.0\/8/,
  );
});

// Two instances of one deployment (one Redis): only the holder of the link lease connects, and a
// clean stop hands the link to the standby (docs/developers/design.md "Several instances").
test("a second instance on the same Redis is a standby: it does not connect, says who holds the link, and takes over when the first stops", async (t) => {
  const first = await startGateway(env({ INSTANCE_ID: "gw-first" }));
  let firstStopped = false;
  t.after(() => (firstStopped ? undefined : first.stop()));
  await first.waitOnline();
  const second = await startGateway(env({ INSTANCE_ID: "gw-second" }));
  t.after(() => second.stop());
  await new Promise((r) => setTimeout(r, 1500)); // several lease ticks
  assert.equal(second.gateway.xmppState().online, false, "the standby never connects");
  assert.equal(second.gateway.xmppState().reconnects, 0);
  assert.equal(first.gateway.xmppState().online, true, "the holder is not disturbed");
  assert.equal(first.gateway.clusterStatus().link.heldHere, true);
  const ready = await second.admin("GET", "/readyz");
  assert.equal(ready.status, 200, "a standby accepts messages durably");
  const body = ready.json as { xmpp: { note?: string }; cluster: { xmppLink: { heldHere: boolean; holder?: string; token?: number }; liveInstances: string[] } };
  assert.match(body.xmpp.note ?? "", /^standby: instance gw-first holds the XMPP link$/);
  assert.deepEqual(body.cluster.xmppLink, { heldHere: false, holder: "gw-first", token: first.gateway.clusterStatus().link.token });
  assert.deepEqual(body.cluster.liveInstances, ["gw-first", "gw-second"]);
  // Between them, every outbound partition is worked by exactly one.
  const parts = [...first.gateway.clusterStatus().partitions, ...second.gateway.clusterStatus().partitions].sort((a, b) => a - b);
  assert.deepEqual(parts, [0, 1, 2, 3, 4, 5, 6, 7]);

  const stoppedAt = Date.now();
  await first.stop();
  firstStopped = true;
  await second.waitOnline(5000);
  const takeoverMs = Date.now() - stoppedAt;
  assert.ok(second.gateway.clusterStatus().link.token! > body.cluster.xmppLink.token!, "a new holder has a larger fencing token");
  t.diagnostic(`standby online ${takeoverMs} ms after the holder's stop began`);
  const alice = await connectClient({ server, username: "alice", password: "alice-pw" });
  t.after(() => alice.stop());
  const pong = await alice.iq(xml("iq", { type: "get", to: DOMAIN }, xml("ping", { xmlns: "urn:xmpp:ping" })));
  assert.equal(pong.attrs.type, "result", pong.toString());
});

// Another deployment (its own Redis, so no shared lease) on the same domain: Prosody, configured with
// component_conflict_resolve = "kick_old" (deploy/templates), hands the domain to the newest connection
// and the old one hears `conflict`; ejabberd keeps both and routes each stanza to one of them
// (docs/facts/xmpp-servers.md "ejabberd 23.01").
test(
  KIND === "ejabberd"
    ? "a gateway of another deployment is accepted too (ejabberd balances between connections), and both serve the domain"
    : "a gateway of another deployment replaces the link (kick_old); the replaced one reports conflict in /readyz and keeps retrying",
  async (t) => {
    const first = await startGateway(env({ XMPP_RECONNECT_MIN_MS: "100", XMPP_RECONNECT_MAX_MS: "30000" }));
    t.after(() => first.stop());
    await first.waitOnline();
    const other = await startGateway(env({ REDIS_URL: `${redis.url}/1`, XMPP_RECONNECT_MIN_MS: "100", XMPP_RECONNECT_MAX_MS: "30000" }));
    t.after(() => other.stop());
    await other.waitOnline();
    assert.deepEqual(other.fatal, []);
    if (server.kind === "ejabberd") {
      assert.equal(other.gateway.xmppState().conflict, false);
      assert.equal(first.gateway.xmppState().online, true, "the first is not kicked");
      // Whichever connection ejabberd picks answers: several pings, every one with a result.
      const alice = await connectClient({ server, username: "alice", password: "alice-pw" });
      t.after(() => alice.stop());
      for (let i = 0; i < 6; i++) {
        const pong = await alice.iq(xml("iq", { type: "get", to: DOMAIN }, xml("ping", { xmlns: "urn:xmpp:ping" })));
        assert.equal(pong.attrs.type, "result", pong.toString());
      }
      return;
    }
    const end = Date.now() + 10_000;
    // The stream error (conflict) comes first, the disconnect right after it.
    while (!(first.gateway.xmppState().conflict && !first.gateway.xmppState().online) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.equal(first.gateway.xmppState().conflict, true);
    assert.equal(first.gateway.xmppState().online, false);
    assert.deepEqual(first.fatal, [], "conflict is not fatal");
    // The details (the conflict note) need the admin token; anyone gets the status.
    const ready = await first.admin("GET", "/readyz");
    assert.equal(ready.status, 200, "still accepts messages durably");
    assert.match(JSON.stringify(ready.json), /conflict: outside this deployment/);
    const anyone = await first.gateway.http.inject({ method: "GET", url: "/readyz" });
    assert.equal(anyone.statusCode, 200);
    assert.deepEqual(anyone.json(), { status: "ready" });
  },
);

// Found by the soak: a link dropped when its lease was lost and connected again when it was taken back
// must stay up. xmpp.js's own stop of the old link, still waiting out its 10 s timeout, used to end the
// new connection, and nothing reconnected it while the lease kept every standby out.
test("a lease lost while Redis was away and taken back: the link connects again and stays up", async (t) => {
  const gw = await startGateway(env({ LEASE_TTL_MS: "2000", XMPP_RECONNECT_MIN_MS: "200", XMPP_RECONNECT_MAX_MS: "1000" }));
  t.after(() => gw.stop());
  await gw.waitOnline();
  await redis.kill();
  const end = Date.now() + 5000;
  while (gw.gateway.xmppState().online && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.equal(gw.gateway.xmppState().online, false, "the link drops when the lease cannot be renewed");
  assert.equal(gw.gateway.clusterStatus().link.heldHere, false);
  await redis.restart();
  await gw.waitOnline(10_000);
  const fence = gw.gateway.clusterStatus().link.token;
  // Longer than xmpp.js's stop timeout (10 s): the old link's stop must not end this one.
  await new Promise((r) => setTimeout(r, 11_000));
  assert.equal(gw.gateway.xmppState().online, true, JSON.stringify(gw.gateway.xmppState()));
  assert.equal(gw.gateway.clusterStatus().link.token, fence, "still the same holding");
  const alice = await connectClient({ server, username: "alice", password: "alice-pw" });
  t.after(() => alice.stop());
  const pong = await alice.iq(xml("iq", { type: "get", to: DOMAIN }, xml("ping", { xmlns: "urn:xmpp:ping" })));
  assert.equal(pong.attrs.type, "result", pong.toString());
});

test("after the XMPP server restarts, the gateway reconnects and delivers what arrived meanwhile, stamped", async (t) => {
  const gw = await startGateway(env({ XMPP_RECONNECT_MIN_MS: "200", XMPP_RECONNECT_MAX_MS: "1000" }));
  t.after(() => gw.stop());
  await gw.waitOnline();
  assert.equal((await gw.admin("PUT", "/api/v1/users/alice@localhost", { phone: "+15550001111" })).status < 300, true);

  await server.stop();
  const down = Date.now() + 5000;
  while (gw.gateway.xmppState().online && Date.now() < down) await new Promise((r) => setTimeout(r, 20));
  assert.equal(gw.gateway.xmppState().online, false);

  // Inbound SMS while the server is away: accepted (sandbox route = same inbound path) and kept.
  const inject = await gw.admin("POST", "/sandbox/sms", { from: "+15552223333", to: "+15550001111", body: "while you were out" });
  assert.equal(inject.status, 202);
  await new Promise((r) => setTimeout(r, 500)); // the delivery tries, finds the server away, waits
  await server.restart();
  await gw.waitOnline(15_000);
  const reconnects = gw.gateway.xmppState().reconnects;
  assert.ok(reconnects >= 1);

  const alice = await connectClient({ server, username: "alice", password: "alice-pw" });
  t.after(() => alice.stop());
  const msg: StanzaElement = await alice.waitFor((el) => el.getChildText("body") === "while you were out", 10_000);
  assert.equal(msg.attrs.from, `+15552223333@${DOMAIN}`);
  const ours = msg.getChildren("delay", "urn:xmpp:delay").find((d) => d.attrs.from === DOMAIN);
  assert.ok(ours?.attrs.stamp, `XEP-0203 delay stamped by the gateway: ${msg.toString()}`);
  assert.ok(Date.parse(ours.attrs.stamp!) <= Date.now() - 500, "stamped when the SMS arrived, not when delivered");
});

test("a handshake that never completes is restarted by the watchdog, with growing gaps", async (t) => {
  // A server that opens the stream and then ignores the handshake (xmpp.js would wait forever).
  const connectedAt: number[] = [];
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => {
    sockets.add(socket);
    connectedAt.push(Date.now());
    socket.on("error", () => {});
    socket.once("data", () => {
      socket.write(`<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='s${connectedAt.length}' from='${DOMAIN}'>`);
    });
  });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as AddressInfo).port;
  const gw = await startGateway(env({ XMPP_SERVICE: `xmpp://127.0.0.1:${port}`, XMPP_HANDSHAKE_TIMEOUT_MS: "500", XMPP_RECONNECT_MIN_MS: "200", XMPP_RECONNECT_MAX_MS: "60000" }));
  t.after(() => gw.stop());
  const end = Date.now() + 10_000;
  while (connectedAt.length < 4 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.ok(connectedAt.length >= 4, `reconnected ${connectedAt.length} times`);
  assert.equal(gw.gateway.xmppState().online, false);
  assert.match(gw.gateway.xmppState().lastError ?? "", /handshake|Timeout/);
  const gaps = connectedAt.slice(1).map((at, i) => at - connectedAt[i]!);
  // Each gap = watchdog (500 ms) + backoff (200·2^n with jitter in [½, 1)): the backoff part grows.
  assert.ok(gaps[2]! > gaps[0]!, `gaps grow: ${gaps.join(", ")}`);
});
