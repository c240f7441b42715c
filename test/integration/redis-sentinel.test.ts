// Redis Sentinel and WAIT (issue 17, must-haves 3 and 6), with real processes: a primary, a replica and
// three Sentinels (test/support/redis-sentinel.ts), the gateway as its own process reaching Redis through
// the Sentinels (REDIS_SENTINELS, REDIS_MIN_REPLICAS=1), a real XMPP server and client, the fake Twilio.
// - The primary is SIGKILLed under steady load both ways; the report counts what was sent, delivered,
//   lost, doubled and out of order per conversation, and the longest gap.
// - The replica is SIGSTOPped: nothing is acknowledged that the replica has not confirmed.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { inboundSmsParams, startFakeTwilio, type FakeTwilio } from "../fakes/fake-twilio.js";
import { runCli } from "../../src/cli/program.js";
import { PROCESS_ADMIN_TOKEN, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { startSentinelTopology, type SentinelTopology } from "../support/redis-sentinel.js";
import { bodyOf, chat, errorCondition, errorText, errorType, isErrorFor } from "../support/stanzas.js";
import { signedWebhook } from "../support/twilio-webhooks.js";
import { waitUntil } from "../support/wait.js";
import { connectClient, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SECRET = "sentinel-secret";
const SID = `AC${"5".repeat(32)}`;
const TOKEN = "sentinel-token";
const PUBLIC = "https://gw.example.test";
const ALICE_NUMBER = "+15550000001";

let topo: SentinelTopology;
let server: XmppServer;
let twilio: FakeTwilio;
/** When the fake Twilio created each message (by sid). */
const createdAt = new Map<string, number>();

before(async () => {
  [topo, server, twilio] = await Promise.all([
    startSentinelTopology(),
    startXmppServer({ componentDomain: DOMAIN, componentSecret: SECRET, users: [{ username: "alice", password: "alice-pw" }] }),
    startFakeTwilio({ accounts: { [SID]: TOKEN }, onCreate: (m) => createdAt.set(m.sid, Date.now()) }),
  ]);
});
after(async () => {
  await Promise.allSettled([twilio?.stop(), server?.stop(), topo?.stop()]);
});

function env(over: Record<string, string> = {}): Record<string, string> {
  return {
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: SECRET,
    REDIS_SENTINELS: topo.sentinels,
    REDIS_SENTINEL_NAME: topo.name,
    REDIS_MIN_REPLICAS: "1",
    PUBLIC_URL: PUBLIC,
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: TOKEN,
    TWILIO_API_URL: twilio.url,
    XMPP_RECONNECT_MIN_MS: "200",
    XMPP_RECONNECT_MAX_MS: "2000",
    INSTANCE_ID: "sentinel",
    USER_SEGMENTS_PER_DAY: "0",
    BREAKER_SEGMENTS_PER_HOUR: "0",
    ...over,
  };
}

/** The gateway, started, with alice linked and online. */
async function gatewayWithAlice(t: TestContext, over: Record<string, string> = {}): Promise<{ gp: GatewayProcess; alice: TestClient }> {
  const gp = await startGatewayProcess(env(over));
  t.after(() => gp.kill());
  await gp.start();
  await gp.waitConnected();
  assert.ok((await gp.admin("PUT", `/api/v1/users/alice@${server.domain}`, { phone: ALICE_NUMBER })).status < 300);
  const alice = await connectClient({ server, username: "alice", password: "alice-pw" });
  t.after(() => alice.stop());
  return { gp, alice };
}

type Check = { name: string; ok: boolean; detail: string };

/** `switchboard doctor --json` with the gateway's configuration and admin token: its redis and gateway checks. */
async function doctor(gp: GatewayProcess): Promise<{ redis: Check; gateway: Check }> {
  let out = "";
  await runCli(["doctor", "--json", "--url", gp.url], { env: { ...env(), ADMIN_TOKEN: PROCESS_ADMIN_TOKEN }, cwd: process.cwd(), stdout: (s) => void (out += s), stderr: () => undefined });
  const checks = (JSON.parse(out) as { checks: Check[] }).checks;
  const named = (name: string) => checks.find((c) => c.name === name) ?? assert.fail(`no ${name} check in ${out}`);
  return { redis: named("redis"), gateway: named("gateway") };
}

type Readyz = { status: string; redis: string; redisSetup?: { mode: string; primary?: string; replicas?: { required: number; connected?: number; inSync?: number } }; journal?: { pending: number } };
const readyz = async (gp: GatewayProcess) => (await gp.ready()).body as unknown as Readyz;

const postSms = (gp: GatewayProcess, params: Record<string, string>) => {
  const s = signedWebhook({ authToken: TOKEN, publicUrl: PUBLIC }, "/twilio/sms", params);
  return gp.post("/twilio/sms", s.body, s.headers);
};

/** Messages from `contact` to the client, first arrival of each stanza id, with the time it arrived. */
function arrivals(log: { el: StanzaElement; at: number }[], prefix: string): Map<string, { body: string; at: number; copies: number }> {
  const out = new Map<string, { body: string; at: number; copies: number }>();
  for (const { el, at } of log) {
    if (el.name !== "message" || el.attrs.type !== "chat" || !bodyOf(el).startsWith(prefix)) continue;
    const id = el.attrs.id ?? "";
    const seen = out.get(id);
    if (seen) seen.copies++;
    else out.set(id, { body: bodyOf(el), at, copies: 1 });
  }
  return out;
}

const longestGap = (times: number[]): number =>
  times
    .slice()
    .sort((a, b) => a - b)
    .reduce((gap, at, i, all) => (i === 0 ? 0 : Math.max(gap, at - all[i - 1]!)), 0);

/** Order violations: within each conversation, a sequence number lower than one delivered before it. */
function orderViolations(delivered: { conv: string; seq: number }[]): number {
  const last = new Map<string, number>();
  let violations = 0;
  for (const d of delivered) {
    if ((last.get(d.conv) ?? 0) > d.seq) violations++;
    else last.set(d.conv, d.seq);
  }
  return violations;
}

test("the primary fails over under steady load both ways: nothing acknowledged is lost, nothing doubled, order kept", async (t) => {
  const { gp, alice } = await gatewayWithAlice(t);
  const first = await topo.primary();
  const ready = await readyz(gp);
  assert.equal(ready.status, "ready");
  assert.equal(ready.redisSetup?.mode, "sentinel");
  assert.equal(ready.redisSetup?.primary, `127.0.0.1:${first.port}`);
  assert.deepEqual([ready.redisSetup?.replicas?.required, ready.redisSetup?.replicas?.connected, ready.redisSetup?.replicas?.inSync], [1, 1, 1]);

  // Every stanza alice receives, with its arrival time.
  const inLog: { el: StanzaElement; at: number }[] = [];
  let seenIn = 0;
  const recordIn = setInterval(() => {
    for (; seenIn < alice.received.length; seenIn++) inLog.push({ el: alice.received[seenIn]!, at: Date.now() });
  }, 5);
  t.after(() => clearInterval(recordIn));

  const CONVERSATIONS = 4;
  let loading = true;
  const inbound = { sent: 0, refused: 0, sentIds: new Map<string, { conv: string; seq: number }>() };
  const outbound = { sent: 0, stanzaErrors: 0, resends: 0, unanswered: 0, accepted: new Map<string, { conv: string; seq: number }>() };
  const errorTexts = new Set<string>();

  // Inbound: a few numbers text alice, each waiting for the gateway's answer before its next text (as
  // Twilio does per conversation); a refusal is retried with the same MessageSid.
  const inDrivers = Array.from({ length: CONVERSATIONS }, async (_, c) => {
    const from = `+1555222000${c}`;
    for (let seq = 1; loading; seq++) {
      const params = inboundSmsParams({ from, to: ALICE_NUMBER, body: `in-${c}-${seq}`, accountSid: SID });
      for (;;) {
        const res = await postSms(gp, params).catch(() => ({ status: 0, text: "" }));
        if (res.status === 200) break;
        inbound.refused++;
        await sleep(200);
      }
      inbound.sent++;
      inbound.sentIds.set(params.MessageSid!, { conv: from, seq });
      await sleep(80);
    }
  });

  // Outbound: alice texts a few numbers, one message at a time per conversation, like a careful client:
  // the next one once the phone has the previous one; after an error reply she resends it with the same id.
  const outDrivers = Array.from({ length: CONVERSATIONS }, async (_, c) => {
    const to = `+1555333000${c}`;
    for (let seq = 1; loading; seq++) {
      const id = `out-${c}-${seq}`;
      for (;;) {
        const errorsBefore = alice.received.filter(isErrorFor(id)).length;
        await alice.send(chat(`${to}@${DOMAIN}`, id, { id }));
        outbound.sent++;
        const deadline = Date.now() + 30_000;
        let outcome: "created" | "error" | "none" = "none";
        while (Date.now() < deadline) {
          if (twilio.created.some((m) => m.body === id)) outcome = "created";
          else {
            const errors = alice.received.filter(isErrorFor(id));
            if (errors.length > errorsBefore) {
              outcome = "error";
              const e = errors[errors.length - 1]!;
              errorTexts.add(`${errorType(e)}/${errorCondition(e)}: ${errorText(e)}`);
            }
          }
          if (outcome !== "none") break;
          await sleep(20);
        }
        if (outcome === "created") break;
        if (outcome === "none") {
          outbound.unanswered++;
          break;
        }
        outbound.stanzaErrors++;
        outbound.resends++;
        await sleep(300);
      }
      outbound.accepted.set(id, { conv: to, seq });
    }
  });

  await sleep(3000);
  const failover = await topo.failover();
  // The old primary comes back as a replica of the new one (restarted as a primary, it would take
  // writes until the Sentinels reconfigure it: docs/facts/redis.md "Failover and retries").
  await failover.from.restart(failover.to);
  const rejoinedAt = Date.now();
  await waitUntil(async () => (await readyz(gp)).status === "ready", { timeoutMs: 30_000, what: "the gateway ready again after the failover" });
  const readyAgainMs = Date.now() - rejoinedAt;
  await sleep(6000);
  loading = false;
  await Promise.all([...inDrivers, ...outDrivers]);

  // Drain: every acknowledged inbound text reaches alice, every accepted outbound one the phone.
  await waitUntil(() => [...inbound.sentIds.keys()].every((sid) => alice.received.some((el) => el.attrs.id === sid)), {
    timeoutMs: 30_000,
    what: () => `every inbound text delivered; missing: ${[...inbound.sentIds.keys()].filter((sid) => !alice.received.some((el) => el.attrs.id === sid)).length}`,
  }).catch(() => undefined);
  await sleep(1000);

  const inArrivals = arrivals(inLog, "in-");
  const inDelivered = [...inArrivals.entries()].sort((a, b) => a[1].at - b[1].at);
  const inLost = [...inbound.sentIds.keys()].filter((sid) => !inArrivals.has(sid));
  const inRepeated = inDelivered.filter(([, a]) => a.copies > 1).length;
  const inOrder = orderViolations(inDelivered.map(([sid]) => inbound.sentIds.get(sid) ?? { conv: "?", seq: 0 }));
  const inGap = longestGap(inDelivered.map(([, a]) => a.at));

  const outBodies = twilio.created.filter((m) => m.body.startsWith("out-"));
  const outCounts = new Map<string, number>();
  for (const m of outBodies) outCounts.set(m.body, (outCounts.get(m.body) ?? 0) + 1);
  const outDoubled = [...outCounts.values()].filter((n) => n > 1).length;
  const outLost = [...outbound.accepted.keys()].filter((id) => !outCounts.has(id));
  const outOrder = orderViolations(outBodies.map((m) => outbound.accepted.get(m.body) ?? { conv: m.to, seq: Number(m.body.split("-")[2]) }));
  const outGap = longestGap(outBodies.map((m) => createdAt.get(m.sid) ?? 0).filter((x) => x > 0));

  const journaled = (gp.log().match(/inbound SMS kept in the journal/g) ?? []).length;
  t.diagnostic(`failover ${failover.from.port} → ${failover.to.port}: Sentinels agreed after ${failover.ms} ms; gateway ready again ${readyAgainMs} ms after the old primary rejoined as a replica`);
  t.diagnostic(
    `inbound (webhook → XMPP): sent ${inbound.sent}, delivered ${inArrivals.size}, lost ${inLost.length}, doubled ${inRepeated} (same stanza id), order violations ${inOrder}, refused ${inbound.refused}, via the journal ${journaled}, longest gap ${inGap} ms`,
  );
  t.diagnostic(
    `outbound (XMPP → phone): sent ${outbound.accepted.size}, delivered ${outCounts.size}, lost ${outLost.length}, doubled ${outDoubled}, order violations ${outOrder}, error replies ${outbound.stanzaErrors} (resent with the same id), unanswered ${outbound.unanswered}, longest gap ${outGap} ms`,
  );
  for (const e of errorTexts) t.diagnostic(`error reply seen: ${e}`);

  assert.ok(inbound.sent > 50 && outbound.accepted.size > 20, `steady load (${inbound.sent} in, ${outbound.accepted.size} out)`);
  assert.equal(inbound.refused, 0, "every inbound webhook got its 200 (Twilio would not send it again)");
  assert.deepEqual(inLost, [], "every acknowledged inbound text delivered");
  assert.equal(inOrder, 0, "inbound order per conversation");
  assert.deepEqual(outLost, [], "every accepted outbound text reached the phone");
  assert.equal(outbound.unanswered, 0, "every outbound text was either sent or answered with an error");
  assert.equal(outDoubled, 0, "no phone got a text twice");
  assert.equal(outOrder, 0, "outbound order per conversation");
});

test("REDIS_MIN_REPLICAS=1 with the replica stopped: nothing is acknowledged that the replica has not; all arrives once when it is back", async (t) => {
  const { gp, alice } = await gatewayWithAlice(t, { WEBHOOK_ALLOW_PRIVATE: "true", SECRETS_KEY: randomBytes(32).toString("base64") });
  const made = await gp.admin("PUT", "/api/v1/webhooks/alerts", { url: "http://127.0.0.1:9/unused", allow: [`alice@${server.domain}`] });
  assert.equal(made.status, 201);
  const botToken = (made.json as { token: string }).token;
  const postIn = async (body: string, key: string) => {
    const res = await fetch(`${gp.url}/api/v1/webhooks/alerts/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${botToken}`, "content-type": "application/json", "idempotency-key": key },
      body: JSON.stringify({ to: `alice@${server.domain}`, body }),
    });
    return { status: res.status, json: (await res.json()) as { id?: string; detail?: string } };
  };
  const copies = (body: string) => alice.received.filter((el) => el.name === "message" && el.attrs.type === "chat" && bodyOf(el) === body).length;
  await waitUntil(async () => (await readyz(gp)).status === "ready", { timeoutMs: 10_000, what: "ready, with the replica in sync" });
  const primary = await topo.primary();
  let d = await doctor(gp);
  assert.equal(d.redis.ok, true, d.redis.detail);
  assert.match(
    d.redis.detail,
    new RegExp(`^Sentinel mode: the Sentinels .* name the primary 127\\.0\\.0\\.1:${primary.port}, appendonly yes.*, 1 replica connected, 1 in sync \\(REDIS_MIN_REPLICAS=1\\)$`),
  );
  assert.match(d.gateway.detail, new RegExp(`redis via Sentinels, primary 127\\.0\\.0\\.1:${primary.port}, 1 of 1 replicas in sync`));

  const replica = await topo.replica();
  replica.freeze();
  t.after(() => replica.thaw());

  // Before the gateway knows: the message is written, then WAIT gives up (REDIS_REPLICA_WAIT_MS): 503.
  const started = Date.now();
  const unconfirmed = await postIn("wait-1", "key-1");
  const waitedMs = Date.now() - started;
  assert.equal(unconfirmed.status, 503, JSON.stringify(unconfirmed.json));
  assert.match(unconfirmed.json.detail ?? "", /could not confirm the write on a replica.*same Idempotency-Key/);
  assert.ok(waitedMs >= 500, `the WAIT timeout was waited out (${waitedMs} ms)`);

  // Then it knows (INFO replication: the replica stopped acknowledging): acknowledged writes are refused at once.
  await waitUntil(
    async () => {
      const r = await readyz(gp);
      return r.redis === "replicas behind" && r.redisSetup?.replicas?.inSync === 0;
    },
    { timeoutMs: 10_000, what: "/readyz saying the replicas are behind, none in sync" },
  );
  const behind = await readyz(gp);
  assert.equal(behind.status, "degraded");
  d = await doctor(gp);
  assert.equal(d.redis.ok, false);
  assert.match(d.redis.detail, /0 of the 1 replicas REDIS_MIN_REPLICAS requires are in sync/);
  assert.equal(d.gateway.ok, false);
  assert.match(d.gateway.detail, /cannot confirm writes on its Redis replicas/);

  const sms = inboundSmsParams({ from: "+15552229999", to: ALICE_NUMBER, body: "wait-sms", accountSid: SID });
  assert.equal((await postSms(gp, sms)).status, 200, "Twilio still gets its 200: the text is in the journal");
  assert.ok(((await readyz(gp)).journal?.pending ?? 0) >= 1, "pending in the journal");

  const refused = await postIn("wait-2", "key-2");
  assert.equal(refused.status, 503);

  await alice.send(chat(`+15553339999@${DOMAIN}`, "wait-xmpp", { id: "wx-1" }));
  const err = await alice.waitFor(isErrorFor("wx-1"));
  assert.equal(errorType(err), "wait");
  assert.equal(errorCondition(err), "resource-constraint");
  assert.match(errorText(err), /not sent/);
  await alice.expectNone((el) => bodyOf(el) === "wait-sms", 1000);
  assert.equal(
    twilio.created.some((m) => m.body === "wait-xmpp"),
    false,
    "nothing sent to the phone",
  );

  replica.thaw();
  await waitUntil(async () => (await readyz(gp)).status === "ready", { timeoutMs: 15_000, what: "ready again once the replica caught up" });

  // The journal is replayed: the text arrives, once.
  await alice.waitFor((el) => bodyOf(el) === "wait-sms", 10_000);
  // The API caller retries with its keys: accepted, each message delivered once.
  const retried1 = await postIn("wait-1", "key-1");
  const retried2 = await postIn("wait-2", "key-2");
  assert.deepEqual([retried1.status, retried2.status], [202, 202]);
  // The XMPP sender resends with the same id: sent once.
  await alice.send(chat(`+15553339999@${DOMAIN}`, "wait-xmpp", { id: "wx-1" }));
  await waitUntil(() => twilio.created.some((m) => m.body === "wait-xmpp"), { timeoutMs: 10_000, what: "the resent text at the phone" });
  await waitUntil(() => copies("wait-1") >= 1 && copies("wait-2") >= 1, { timeoutMs: 10_000, what: "both API messages delivered" });
  await sleep(1500);
  assert.deepEqual([copies("wait-sms"), copies("wait-1"), copies("wait-2"), twilio.created.filter((m) => m.body === "wait-xmpp").length], [1, 1, 1, 1], "each delivered once");
  t.diagnostic(`WAIT gave up after ${waitedMs} ms (REDIS_REPLICA_WAIT_MS=500); the replica was seen behind and back through INFO replication`);
});
