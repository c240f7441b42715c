// Fault injection with real processes: the XMPP server stopped, the gateway killed or stopped during
// work, repeated webhooks, bounces. Conditions are awaited, not slept on.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { inboundSmsParams, startFakeTwilio, type FakeTwilio } from "../fakes/fake-twilio.js";
import { startGateway } from "../support/gateway.js";
import { startGatewayProcess } from "../support/gateway-process.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { bodyOf } from "../support/stanzas.js";
import { signedWebhook } from "../support/twilio-webhooks.js";
import { waitUntil } from "../support/wait.js";
import { connectClient, xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SECRET = "durability-secret";
const SID = `AC${"2".repeat(32)}`;
const TOKEN = "durability-token";
const PUBLIC = "https://gw.example.test";

let redis: RedisServer;
let server: XmppServer;
let twilio: FakeTwilio;

before(async () => {
  [redis, server, twilio] = await Promise.all([
    startRedis(),
    startXmppServer({ componentDomain: DOMAIN, componentSecret: SECRET, users: ["alice", "bob", "carol", "dave"].map((u) => ({ username: u, password: `${u}-pw` })) }),
    startFakeTwilio({ accounts: { [SID]: TOKEN } }),
  ]);
});
after(async () => {
  await Promise.allSettled([twilio?.stop(), server?.stop(), redis?.stop()]);
});

function env(over: Record<string, string> = {}): Record<string, string> {
  return {
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
    INSTANCE_ID: "durability",
    ...over,
  };
}

/** An inbound SMS webhook signed as Twilio signs it, to post over HTTP. */
const signed = (params: Record<string, string>) => signedWebhook({ authToken: TOKEN, publicUrl: PUBLIC }, "/twilio/sms", params);

const chatsFrom = (client: TestClient, from: string, prefix: string) =>
  client.received.filter((el) => el.name === "message" && el.attrs.type === "chat" && el.attrs.from === from && bodyOf(el).startsWith(prefix));
/** Same-id repeats counted once (a client discards them by id). */
function uniqueById(els: StanzaElement[]): StanzaElement[] {
  const seen = new Set<string>();
  return els.filter((el) => !seen.has(el.attrs.id ?? "") && seen.add(el.attrs.id ?? ""));
}

test("(a) XMPP server stopped: 50 SMS accepted, all delivered after it returns, in order, once, with <delay/>", async (t) => {
  const gw = await startGateway(env());
  t.after(() => gw.stop());
  await gw.waitOnline();
  assert.ok((await gw.admin("PUT", "/api/v1/users/alice@localhost", { phone: "+15550000001" })).status < 300);

  await server.stop();
  await waitUntil(async () => !gw.gateway.xmppState().online, { timeoutMs: 5000, what: "component offline" });
  const from = "+15552220001";
  for (let i = 1; i <= 50; i++) {
    const params = inboundSmsParams({ from, to: "+15550000001", body: `a-${String(i).padStart(2, "0")}`, accountSid: SID });
    const s = signed(params);
    const res = await gw.gateway.http.inject({ method: "POST", url: "/twilio/sms", headers: s.headers, payload: s.body });
    assert.equal(res.statusCode, 200);
  }
  await server.restart();
  const alice = await connectClient({ server, username: "alice", password: "alice-pw" });
  t.after(() => alice.stop());
  const contact = `${from}@${DOMAIN}`;
  await waitUntil(async () => uniqueById(chatsFrom(alice, contact, "a-")).length >= 50, { timeoutMs: 20_000, what: "50 messages" });
  const got = uniqueById(chatsFrom(alice, contact, "a-"));
  assert.deepEqual(
    got.map(bodyOf),
    Array.from({ length: 50 }, (_, i) => `a-${String(i + 1).padStart(2, "0")}`),
    "arrival order",
  );
  for (const el of got) {
    assert.ok(
      el.getChildren("delay", "urn:xmpp:delay").some((d) => d.attrs.from === DOMAIN),
      `delay on ${bodyOf(el)}`,
    );
  }
  await alice.expectNone((el) => bodyOf(el).startsWith("a-") && !got.includes(el) && !got.some((g) => g.attrs.id === el.attrs.id), 500);
});

test("(f) the same MessageSid arriving twice at once delivers one message", async (t) => {
  const gw = await startGateway(env());
  t.after(() => gw.stop());
  await gw.waitOnline();
  assert.ok((await gw.admin("PUT", "/api/v1/users/bob@localhost", { phone: "+15550000002" })).status < 300);
  const bob = await connectClient({ server, username: "bob", password: "bob-pw" });
  t.after(() => bob.stop());
  const params = inboundSmsParams({ from: "+15552220002", to: "+15550000002", body: "f-twice", accountSid: SID });
  const s = signed(params);
  const results = await Promise.all(Array.from({ length: 10 }, () => gw.gateway.http.inject({ method: "POST", url: "/twilio/sms", headers: s.headers, payload: s.body })));
  assert.ok(results.every((r) => r.statusCode === 200));
  await bob.waitFor((el) => bodyOf(el) === "f-twice");
  await bob.expectNone((el) => bodyOf(el) === "f-twice" && bob.received.filter((e) => bodyOf(e) === "f-twice").length > 1, 800);
});

test("(h) a bounce for an unknown user ends as a dead letter with the reason, not a loop; it can be retried", async (t) => {
  const gw = await startGateway(env({ XMPP_MAX_BOUNCES: "2", XMPP_BOUNCE_RETRY_MS: "500" }));
  t.after(() => gw.stop());
  await gw.waitOnline();
  assert.ok((await gw.admin("PUT", "/api/v1/users/ghost@localhost", { phone: "+15550000003" })).status < 300);
  const params = inboundSmsParams({ from: "+15552220003", to: "+15550000003", body: "h-nobody", accountSid: SID });
  const s = signed(params);
  assert.equal((await gw.gateway.http.inject({ method: "POST", url: "/twilio/sms", headers: s.headers, payload: s.body })).statusCode, 200);

  type Dl = { deadLetters: { id: string; queue: string; reason: string; messageId: string; to: string }[] };
  let dl: Dl["deadLetters"][number] | undefined;
  await waitUntil(
    async () => {
      dl = ((await gw.admin("GET", "/api/v1/dead-letters")).json as Dl).deadLetters.find((d) => d.messageId === params.MessageSid);
      return dl !== undefined;
    },
    { timeoutMs: 15_000, what: "dead letter" },
  );
  assert.equal(dl!.queue, "to-xmpp");
  assert.equal(dl!.to, "ghost@localhost");
  // RFC 6121 §8.5.2.1.1: a message to an account that does not exist is bounced with
  // service-unavailable; Prosody and ejabberd both do so.
  assert.match(dl!.reason, /bounced by the XMPP server 2 times: service-unavailable/);
  assert.equal(JSON.stringify(dl).includes("h-nobody"), false, "the listing shows no body");

  // Retried: the same delivery goes around again, and ends in the dead letters again.
  const retried = await gw.admin("POST", `/api/v1/dead-letters/${dl!.id}/retry`);
  assert.equal(retried.status, 202);
  await waitUntil(async () => ((await gw.admin("GET", "/api/v1/dead-letters")).json as Dl).deadLetters.some((d) => d.messageId === params.MessageSid && d.id !== dl!.id), {
    timeoutMs: 15_000,
    what: "dead letter again",
  });
  assert.equal((await gw.admin("POST", `/api/v1/dead-letters/${dl!.id}/retry`)).status, 404, "the old one was taken out");
});

test("(i) a user whose account appears after the first bounce receives the message exactly once, and it is not dead-lettered", async (t) => {
  const logLines: string[] = [];
  const gw = await startGateway(env({ XMPP_BOUNCE_RETRY_MS: "1000", XMPP_MAX_BOUNCES: "3" }), { logLines });
  t.after(() => gw.stop());
  await gw.waitOnline();
  assert.ok((await gw.admin("PUT", "/api/v1/users/erin@localhost", { phone: "+15550000006" })).status < 300);
  const params = inboundSmsParams({ from: "+15552220006", to: "+15550000006", body: "i-late-account", accountSid: SID });
  const s = signed(params);
  assert.equal((await gw.gateway.http.inject({ method: "POST", url: "/twilio/sms", headers: s.headers, payload: s.body })).statusCode, 200);
  // erin's account does not exist yet: the server bounces the first delivery (service-unavailable).
  await waitUntil(async () => logLines.some((l) => l.includes("message bounced by the XMPP server") && l.includes(params.MessageSid!)), { timeoutMs: 10_000, what: "the first bounce" });
  await server.addUser("erin", "erin-pw");
  const erin = await connectClient({ server, username: "erin", password: "erin-pw" });
  t.after(() => erin.stop());
  const copies = () => erin.received.filter((el) => el.name === "message" && bodyOf(el) === "i-late-account");
  await waitUntil(async () => copies().length > 0, { timeoutMs: 15_000, what: "the message after the account appeared" });
  // Long enough for every further retry a wrong bounce count would make (1 s, then 3 s).
  await new Promise((r) => setTimeout(r, 5000));
  assert.equal(copies().length, 1, "delivered exactly once");
  const ofTheText = (l: string) => l.includes(`"msgId":"${params.MessageSid!}","kind":"chat"`);
  const written = logLines.filter((l) => l.includes("written to the XMPP server") && ofTheText(l));
  assert.equal(written.length, 2, `written twice in all: the bounced write and the one that reached erin\n${written.join("\n")}`);
  const at = written.map((l) => (JSON.parse(l) as { time: number }).time);
  assert.ok(at[1]! - at[0]! >= 1000, `the second write waited XMPP_BOUNCE_RETRY_MS after the bounce (${at[1]! - at[0]!} ms)`);
  const bounces = logLines.filter((l) => l.includes("XMPP server bounced a delivery") && ofTheText(l));
  assert.equal(bounces.length, 1, `the one bounce counted once\n${bounces.join("\n")}`);
  type Dl = { deadLetters: { messageId: string }[] };
  assert.equal(
    ((await gw.admin("GET", "/api/v1/dead-letters")).json as Dl).deadLetters.some((d) => d.messageId === params.MessageSid),
    false,
    "not dead-lettered",
  );
});

test("(b) SIGKILL after the 200s, before delivery: all delivered after restart", async (t) => {
  const gp = await startGatewayProcess(env());
  t.after(() => gp.kill());
  await gp.start({ TEST_HOLD_TO_XMPP: "true" });
  await gp.waitConnected();
  assert.ok((await gp.admin("PUT", "/api/v1/users/carol@localhost", { phone: "+15550000004" })).status < 300);
  const from = "+15552220004";
  for (let i = 1; i <= 20; i++) {
    const s = signed(inboundSmsParams({ from, to: "+15550000004", body: `b-${String(i).padStart(2, "0")}`, accountSid: SID }));
    assert.equal((await gp.post("/twilio/sms", s.body, s.headers)).status, 200);
  }
  await gp.kill();
  const carol = await connectClient({ server, username: "carol", password: "carol-pw" });
  t.after(() => carol.stop());
  await gp.start();
  const contact = `${from}@${DOMAIN}`;
  await waitUntil(async () => uniqueById(chatsFrom(carol, contact, "b-")).length >= 20, { timeoutMs: 20_000, what: "20 messages after restart" });
  assert.deepEqual(
    uniqueById(chatsFrom(carol, contact, "b-")).map(bodyOf),
    Array.from({ length: 20 }, (_, i) => `b-${String(i + 1).padStart(2, "0")}`),
  );
});

test("(g) SIGTERM during a burst: exit 0 in time, nothing lost after restart, no SMS twice", async (t) => {
  const gp = await startGatewayProcess(env());
  t.after(() => gp.kill());
  await gp.start();
  await gp.waitConnected();
  assert.ok((await gp.admin("PUT", "/api/v1/users/dave@localhost", { phone: "+15550000005" })).status < 300);
  const dave = await connectClient({ server, username: "dave", password: "dave-pw" });
  t.after(() => dave.stop());
  const from = "+15552220005";
  const contact = `${from}@${DOMAIN}`;
  const createdBefore = twilio.created.length;

  // Both directions at once: 40 inbound SMS and 20 messages from dave, then SIGTERM in the middle.
  const inbound = Array.from({ length: 40 }, (_, i) => signed(inboundSmsParams({ from, to: "+15550000005", body: `g-${String(i + 1).padStart(2, "0")}`, accountSid: SID })));
  const posting = (async () => {
    const codes: number[] = [];
    for (const s of inbound) {
      try {
        codes.push((await gp.post("/twilio/sms", s.body, s.headers)).status);
      } catch {
        codes.push(0); // refused: the gateway stopped taking requests; Twilio would see an error
      }
    }
    return codes;
  })();
  for (let i = 1; i <= 20; i++) await dave.send(xml("message", { to: contact, type: "chat", id: `g-out-${i}` }, xml("body", {}, `g-out-${i}`)));
  await waitUntil(async () => twilio.created.length > createdBefore || chatsFrom(dave, contact, "g-").length > 0, { timeoutMs: 10_000, what: "burst under way" });
  const started = Date.now();
  const code = await gp.terminate(15_000);
  assert.equal(code, 0, `exit code; log tail:\n${gp.log().slice(-2000)}`);
  assert.ok(Date.now() - started < 11_000, "within the default 10 s bound");
  const codes = await posting;
  const accepted = inbound.filter((_, i) => codes[i] === 200).map((s) => new URLSearchParams(s.body).get("Body")!);

  await gp.start();
  await waitUntil(
    async () => {
      const got = new Set(uniqueById(chatsFrom(dave, contact, "g-")).map(bodyOf));
      return accepted.every((b) => got.has(b));
    },
    { timeoutMs: 20_000, what: "every accepted SMS delivered" },
  );
  await waitUntil(async () => twilio.created.filter((m) => m.body.startsWith("g-out-")).length >= 20, { timeoutMs: 20_000, what: "20 SMS sent" });
  await new Promise((r) => setTimeout(r, 500));
  const sent = twilio.created.filter((m) => m.body.startsWith("g-out-")).map((m) => m.body);
  assert.equal(sent.length, 20, "each outgoing message exactly once");
  assert.equal(new Set(sent).size, 20);
  const inOrder = uniqueById(chatsFrom(dave, contact, "g-")).map(bodyOf);
  assert.deepEqual(inOrder, [...inOrder].sort(), "per-conversation order kept");
});
