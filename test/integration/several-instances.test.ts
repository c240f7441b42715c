// Three gateway processes against one Redis and one XMPP server, under steady traffic both ways, through
// the faults a deployment meets: the instance holding the XMPP link SIGKILLed and restarted, then a
// rolling deploy (each instance SIGTERMed and started again, one after the other). Each phase reports
// what was sent, delivered, lost, doubled and reordered, and the longest gap; nothing may be lost or
// sent twice to a phone, and no conversation may be reordered (docs/developers/design.md "Several instances").
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { partitionsOf } from "../../src/core/cluster/work-share.js";
import { startFakeTwilio, type FakeTwilio } from "../fakes/fake-twilio.js";
import type { GatewayProcess } from "../support/gateway-process.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { assertClean, clusterDetails as details, linkHolder, startInstances, stopInstances, type Details } from "../support/instances.js";
import { startTraffic } from "../support/traffic.js";
import { waitUntil } from "../support/wait.js";
import { connectClient, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SECRET = "several-secret";
const SID = `AC${"7".repeat(32)}`;
const TOKEN = "several-token";
const PUBLIC = "https://sms.several.example.test";
const ALICE_PHONE = "+15550007001";
const CONTACTS = ["+15552227001", "+15552227002", "+15552227003", "+15552227004"];
const LEASE_TTL_MS = 3000;

let redis: RedisServer;
let server: XmppServer;
let twilio: FakeTwilio;
let alice: TestClient;
const gateways: GatewayProcess[] = [];
/** The webhook target's receiver: the bodies it was POSTed, in order (repeats included). */
let hookServer: Server;
const hookBodies: string[] = [];

before(async () => {
  hookServer = createServer((req, res) => {
    let raw = "";
    req.on("data", (d: Buffer) => (raw += d.toString()));
    req.on("end", () => {
      hookBodies.push((JSON.parse(raw) as { body: string }).body);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, "127.0.0.1", r));
  [redis, server, twilio] = await Promise.all([
    startRedis(),
    startXmppServer({ componentDomain: DOMAIN, componentSecret: SECRET, users: [{ username: "alice", password: "alice-pw" }] }),
    startFakeTwilio({ accounts: { [SID]: TOKEN } }),
  ]);
  const env = {
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: SECRET,
    REDIS_URL: redis.url,
    PUBLIC_URL: PUBLIC,
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: TOKEN,
    TWILIO_API_URL: twilio.url,
    XMPP_RECONNECT_MIN_MS: "200",
    XMPP_RECONNECT_MAX_MS: "2000",
    LEASE_TTL_MS: String(LEASE_TTL_MS),
    USER_SEGMENTS_PER_DAY: "0",
    BREAKER_SEGMENTS_PER_HOUR: "0",
    SECRETS_KEY: randomBytes(32).toString("base64"),
    WEBHOOK_ALLOW_PRIVATE: "true", // the receiver is on loopback
  };
  gateways.push(...(await startInstances(env, ["gw-0", "gw-1", "gw-2"])));
  assert.equal((await gateways[0]!.admin("PUT", "/api/v1/users/alice@localhost", { phone: ALICE_PHONE })).status, 201);
  const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
  assert.equal((await gateways[2]!.admin("PUT", "/api/v1/webhooks/deploybot", { url: hookUrl, allow: ["alice@localhost"] })).status, 201);
  alice = await connectClient({ server, username: "alice", password: "alice-pw" });
});

after(async () => {
  await alice?.stop();
  await stopInstances(gateways);
  hookServer?.closeAllConnections();
  await Promise.allSettled([twilio?.stop(), server?.stop(), redis?.stop(), new Promise((r) => hookServer?.close(r))]);
});

/** The instance holding the link and connected, if exactly one does. */
const holder = () => linkHolder(gateways);

function traffic() {
  return startTraffic({
    instances: () => gateways.filter((g) => g.running()).map((g) => g.url),
    signer: { authToken: TOKEN, publicUrl: PUBLIC, accountSid: SID },
    client: alice,
    twilio,
    domain: DOMAIN,
    userPhone: ALICE_PHONE,
    contacts: CONTACTS,
    perSecond: 4,
    webhook: { jid: `deploybot@${DOMAIN}`, received: () => hookBodies },
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("every instance serves HTTP and sends; outbound partitions are shared out and exactly one holds the link", async (t) => {
  const startedAt = Date.now();
  let all: Details[] = [];
  // Instances that started at different times agree within a few lease ticks.
  await waitUntil(
    async () => {
      all = (await Promise.all(gateways.map(details))).map((d) => d!);
      const live = ["gw-0", "gw-1", "gw-2"];
      // Each works exactly its share (rendezvous hashing over the live instances), so each partition is worked once.
      return all.every((d) => d.cluster.liveInstances.join() === live.join() && d.cluster.outboundPartitions.join() === partitionsOf(d.cluster.instance, 8, live).join());
    },
    { timeoutMs: 10_000, what: `the instances agree: ${JSON.stringify(all.map((d) => d?.cluster))}` },
  );
  t.diagnostic(`agreed within ${Date.now() - startedAt} ms: ${JSON.stringify(all.map((d) => [d.cluster.instance, d.cluster.outboundPartitions]))}`);
  assert.equal(all.filter((d) => d.cluster.xmppLink.heldHere).length, 1);
  assert.equal(all.filter((d) => d.xmpp.connected).length, 1, "only the holder connects");
  assert.ok(
    all.every((d) => d.cluster.outboundPartitions.length > 0),
    "each instance works some",
  );
});

test("the link holder SIGKILLed under load: a standby takes over within the lease; restarted, it rejoins; nothing lost, nothing sent twice", async (t) => {
  const load = traffic();
  await sleep(3000);
  const victim = (await holder())!;
  const killedAt = Date.now();
  await victim.kill();
  let next: GatewayProcess | undefined;
  await waitUntil(async () => (next = await holder()) !== undefined, { timeoutMs: LEASE_TTL_MS + 10_000, what: "a new link holder" });
  const takeoverMs = Date.now() - killedAt;
  assert.notEqual(next, victim);
  await victim.start();
  await sleep(3000);
  await load.stop();
  const r = await load.settle();
  t.diagnostic(`takeover after SIGKILL: ${takeoverMs} ms (LEASE_TTL_MS=${LEASE_TTL_MS})`);
  assertClean(t, "SIGKILL of the link holder", r, { sameIdRepeatsAllowed: true });
  assert.ok(takeoverMs < LEASE_TTL_MS + 3000, `took over in ${takeoverMs} ms`);
});

test("a rolling deploy (SIGTERM, start again, one instance after the other) under load: nothing lost, doubled, reordered or repeated", async (t) => {
  const load = traffic();
  await sleep(2000);
  const handovers: number[] = [];
  for (const g of gateways) {
    const held = (await holder()) === g;
    const stoppedAt = Date.now();
    assert.equal(await g.terminate(), 0, `gw exits cleanly:\n${g.log().slice(-2000)}`);
    if (held) {
      await waitUntil(async () => (await holder()) !== undefined, { timeoutMs: 10_000, what: "the link handed over" });
      handovers.push(Date.now() - stoppedAt);
    }
    await g.start();
    await sleep(1000);
  }
  await sleep(2000);
  await load.stop();
  const r = await load.settle();
  t.diagnostic(`link hand-over on SIGTERM: ${handovers.join(", ")} ms`);
  assertClean(t, "rolling deploy", r, { sameIdRepeatsAllowed: false });
  assert.ok(handovers.length >= 1 && handovers.every((ms) => ms < 5000), `hand-overs ${handovers.join(", ")} ms`);
});
