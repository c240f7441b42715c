// Hostile input on the XMPP side (issue 6, "Hostile input"), on a real server (Prosody, then
// ejabberd), real Redis and the sandbox provider:
// - generated stanzas (unexpected children, huge bodies, deep and wide trees, bidi and control
//   characters, odd types and ids) sent by a user through the server, and handed to the component
//   directly with text no server would let through: every IQ get/set gets exactly one reply, errors
//   are never answered, nothing is answered internal-server-error, the link never drops, nothing
//   rejects unhandled, and the gateway still works afterwards;
// - what the gateway writes is always acceptable to the server: an SMS with control characters,
//   non-characters, lone surrogates or a sender that is no number, and the largest message-in, are
//   delivered without the server closing the component stream;
// - XMPP_MAX_STANZA_BYTES: a larger stanza, a message or an IQ a user sends through the server (whose
//   own client limit, 256 KiB on both, lets it through), is dropped and answered policy-violation with
//   the reason; the component link stays up and what comes right after it is handled;
// - characters split between socket reads arrive whole (many large multi-byte messages at once).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { startGateway, ADMIN_TOKEN, type TestGateway } from "../support/gateway.js";
import { rawStanza, serverStanza } from "../support/hostile.js";
import { StanzaFuzzer, pingGateway, type StanzaFuzzStats } from "../support/stanza-fuzz.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { connectClient, xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const NUMBER = "+15550001111";
const MAX_STANZA = 128 * 1024;
const RUNS = Number(process.env.HOSTILE_STANZA_RUNS ?? 200);

let redis: RedisServer;
let server: XmppServer;
let gw: TestGateway;
let alice: TestClient;
let webhookToken = "";
const logLines: string[] = [];
const rejections: unknown[] = [];
const onRejection = (e: unknown) => void rejections.push(e);

before(async () => {
  process.on("unhandledRejection", onRejection);
  [redis, server] = await Promise.all([startRedis(), startXmppServer({ componentDomain: DOMAIN, componentSecret: "component-secret", users: [{ username: "alice", password: "alice-pw" }] })]);
  gw = await startGateway(
    {
      XMPP_SERVICE: server.componentService,
      XMPP_DOMAIN: DOMAIN,
      XMPP_SECRET: "component-secret",
      REDIS_URL: redis.url,
      SMS_PROVIDER: "sandbox",
      SECRETS_KEY: randomBytes(32).toString("base64"),
      WEBHOOK_ALLOW_PRIVATE: "true",
      XMPP_MAX_STANZA_BYTES: String(MAX_STANZA),
      XMPP_RECONNECT_MIN_MS: "200",
      MAX_SEGMENTS: "50",
      USER_SEGMENTS_PER_DAY: "0",
      BREAKER_SEGMENTS_PER_HOUR: "0",
      WEBHOOK_IN_PER_MINUTE: "0",
      LOG_LEVEL: "warn",
    },
    { logLines },
  );
  await gw.waitOnline();
  assert.equal((await gw.admin("PUT", `/api/v1/users/alice@${server.domain}`, { phone: NUMBER })).status, 201);
  const hook = await gw.admin("PUT", "/api/v1/webhooks/bot", { url: "http://127.0.0.1:9/hook", allow: [`alice@${server.domain}`] });
  assert.equal(hook.status, 201);
  webhookToken = (hook.json as { token: string }).token;
  alice = await connectClient({ server, username: "alice", password: "alice-pw", resource: "fuzz" });
});

after(async () => {
  process.off("unhandledRejection", onRejection);
  await alice?.stop();
  await gw?.stop();
  await Promise.allSettled([server?.stop(), redis?.stop()]);
});

/** Log lines at error level or above (pino: 50 error, 60 fatal). */
const errorLines = () => logLines.filter((l) => /"level":(5|6)\d/.test(l));

function assertClean(stats: StanzaFuzzStats, reconnectsBefore: number): void {
  assert.deepEqual(stats.iqMissing, [], "every IQ get/set is answered");
  assert.deepEqual(stats.iqDuplicated, [], "… exactly once");
  assert.deepEqual(stats.answeredErrors, [], "no answer to an error or an IQ result");
  assert.deepEqual(stats.internalErrors, [], "no handler threw");
  assert.equal(gw.gateway.xmppState().reconnects, reconnectsBefore, "the component link never dropped");
  assert.ok(gw.gateway.xmppState().online);
  assert.deepEqual(gw.fatal, []);
  assert.deepEqual(rejections, []);
  assert.deepEqual(errorLines(), []);
}

async function sandboxMessages(): Promise<{ direction: string; from: string; to: string; body: string }[]> {
  const res = await gw.gateway.http.inject({ method: "GET", url: "/sandbox/messages", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  return (JSON.parse(res.body) as { messages: { direction: string; from: string; to: string; body: string }[] }).messages;
}

describe("generated hostile stanzas", () => {
  test(`${RUNS} stanzas through the XMPP server`, async () => {
    const before = gw.gateway.xmppState().reconnects;
    const fuzzer = new StanzaFuzzer(gw.gateway, alice, { tag: "s", maxBytes: 100_000 });
    const samples = fc.sample(serverStanza(DOMAIN, 20_000), RUNS);
    for (const [i, g] of samples.entries()) {
      await fuzzer.send(g, "server");
      if (i % 25 === 24) await fuzzer.settle();
    }
    await fuzzer.settle();
    assert.ok(alice.isOnline(), "the server kept the sender connected (everything sent was valid XMPP)");
    assert.ok(fuzzer.stats.iqs > RUNS / 5, `IQs were among them: ${fuzzer.stats.iqs}`);
    assertClean(fuzzer.stats, before);
    assert.ok(await pingGateway(alice, DOMAIN), "the gateway answers a ping afterwards");
  });

  test(`${RUNS} stanzas handed to the component directly, with text no server lets through`, async () => {
    const before = gw.gateway.xmppState().reconnects;
    const fuzzer = new StanzaFuzzer(gw.gateway, alice, { tag: "d", maxBytes: 100_000 });
    const samples = fc.sample(rawStanza(DOMAIN, 20_000), RUNS);
    for (const [i, g] of samples.entries()) {
      await fuzzer.send(g, "direct");
      if (i % 25 === 24) await fuzzer.settle();
    }
    await fuzzer.settle();
    assertClean(fuzzer.stats, before);
    assert.ok(await pingGateway(alice, DOMAIN));
    // and it still texts
    await relink();
    await alice.send(xml("message", { to: `+15552223333@${DOMAIN}`, type: "chat", id: "still-works" }, xml("body", {}, "still works")));
    const end = Date.now() + 5000;
    while (!(await sandboxMessages()).some((m) => m.direction === "out" && m.body === "still works")) {
      assert.ok(Date.now() < end, "the SMS went out");
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});

/** The generated stanzas may have unregistered alice (chat "unregister", XEP-0077 <remove/>): link her again. */
async function relink(): Promise<void> {
  assert.ok([200, 201].includes((await gw.admin("PUT", `/api/v1/users/alice@${server.domain}`, { phone: NUMBER })).status));
}

describe("what the gateway writes is always acceptable to the server", () => {
  test("an SMS with controls, non-characters, lone surrogates, bidi overrides or a sender that is no number is delivered; the link stays up", async () => {
    await relink();
    const before = gw.gateway.xmppState().reconnects;
    const cases = [
      ["+15552223333", "bell\u0007 nul\u0000 esc\u001b"],
      ["+15552223333", "non-characters \ufffe\uffff"],
      ["+15552223333", "half a pair \ud83d and \ude00 alone"],
      ["+15552223333", "bidi \u202eevil\u202c and \u2066isolate\u2069"],
      ["+1/x@evil.example", "a sender with a slash and an at"],
      ["+1 \u0001<script>", "a sender with a control character"],
      ["\u202eknaB", "an alphanumeric sender with a bidi override"],
    ];
    for (const [from, body] of cases) {
      const res = await gw.gateway.http.inject({
        method: "POST",
        url: "/sandbox/sms",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        payload: JSON.stringify({ from, to: NUMBER, body }),
      });
      assert.equal(res.statusCode, 202, res.body);
    }
    for (const [, body] of cases) {
      // what XML cannot carry arrives as U+FFFD; the rest as sent
      // eslint-disable-next-line no-control-regex -- the characters XML 1.0 forbids are what is replaced
      const expected = body!.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
      const msg = await alice.waitFor((el) => el.name === "message" && el.getChildText("body") === expected, 5000);
      // eslint-disable-next-line no-control-regex -- control characters are what must be absent
      assert.doesNotMatch(msg.attrs.from ?? "", /[\s/\u0000-\u001f]|@.*@/, "the sender's JID is a JID");
    }
    assert.equal(gw.gateway.xmppState().reconnects, before, "the server never closed the component stream");
    alice.received.length = 0;
  });

  test("the largest message-in (10,000 escaped characters and 10 media links of 2,048) is delivered in one piece", async () => {
    const before = gw.gateway.xmppState().reconnects;
    const url = (i: number) => `https://files.example/${i}?${"&a='\"<>".repeat(400)}`.slice(0, 2048);
    const body = `<&'">`.repeat(2000);
    const res = await gw.gateway.http.inject({
      method: "POST",
      url: "/api/v1/webhooks/bot/messages",
      headers: { authorization: `Bearer ${webhookToken}`, "content-type": "application/json" },
      payload: JSON.stringify({ to: `alice@${server.domain}`, body, subject: "'".repeat(256), media: Array.from({ length: 10 }, (_, i) => url(i)) }),
    });
    assert.equal(res.statusCode, 202, res.body);
    const msg = await alice.waitFor((el) => el.name === "message" && el.attrs.from === `bot@${DOMAIN}`, 10_000);
    assert.ok(msg.getChildText("body")?.startsWith(body));
    assert.equal(msg.getChildren("x", "jabber:x:oob").length, 10);
    assert.equal(gw.gateway.xmppState().reconnects, before);
    alice.received.length = 0;
  });
});

describe("XMPP_MAX_STANZA_BYTES and socket reads", () => {
  test("a stanza under the limit is handled; one over it is dropped and its sender told why (policy-violation); the link stays up and the next message goes out", async () => {
    await relink();
    const before = gw.gateway.xmppState().reconnects;
    const logsBefore = logLines.length;
    const pad = (bytes: number) => xml("pad", { xmlns: "urn:example:pad" }, "p".repeat(bytes));
    // a message to the gateway without a body: nothing to answer, but it must be read whole
    await alice.send(xml("message", { to: DOMAIN, id: "under-limit" }, pad(MAX_STANZA / 2)));
    assert.ok(await pingGateway(alice, DOMAIN));

    // Over the limit: a text to a phone (it would go out as an SMS if read), then an IQ, each followed
    // at once by a stanza of normal size.
    const phone = `+15552223333@${DOMAIN}`;
    await alice.send(xml("message", { to: phone, type: "chat", id: "too-big" }, xml("body", {}, "the oversize one"), pad(MAX_STANZA + 64 * 1024)));
    await alice.send(xml("message", { to: phone, type: "chat", id: "right-after" }, xml("body", {}, "right after the oversize one")));
    const iqAnswer = alice.iq(xml("iq", { type: "get", to: DOMAIN, id: "too-big-iq" }, xml("query", { xmlns: "jabber:iq:version" }, pad(MAX_STANZA + 1))), 10_000);
    assert.ok(await pingGateway(alice, DOMAIN), "the gateway answers the ping right after");

    const isPolicyViolation = (el: StanzaElement) => {
      const error = el.getChild("error");
      assert.equal(error?.attrs.type, "modify");
      assert.ok(error?.getChild("policy-violation", "urn:ietf:params:xml:ns:xmpp-stanzas"));
      const text = error?.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas") ?? "";
      assert.match(text, /bytes when it reached the gateway, which accepts at most 131,072 bytes \(XMPP_MAX_STANZA_BYTES\); it was dropped and nothing was sent\./);
      return text;
    };
    const bounce = await alice.waitFor((el) => el.name === "message" && el.attrs.id === "too-big", 10_000);
    assert.equal(bounce.attrs.type, "error");
    assert.equal(bounce.attrs.from, phone, "from the contact it was sent to");
    const bytes = Number(/was ([\d,]+) bytes/.exec(isPolicyViolation(bounce))?.[1]?.replace(/,/g, ""));
    assert.ok(bytes > MAX_STANZA + 64 * 1024, `the size it arrived with: ${bytes}`);
    const iq = await iqAnswer;
    assert.equal(iq.attrs.type, "error");
    isPolicyViolation(iq);

    const end = Date.now() + 10_000;
    while (!(await sandboxMessages()).some((m) => m.direction === "out" && m.body === "right after the oversize one")) {
      assert.ok(Date.now() < end, "the message right after went out as an SMS");
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(!(await sandboxMessages()).some((m) => m.body === "the oversize one"), "the oversize one was not texted");
    await alice.expectNone((el) => el.attrs.id === "too-big" && el !== bounce, 200);

    assert.equal(gw.gateway.xmppState().reconnects, before, "the component link never dropped");
    assert.ok(gw.gateway.xmppState().online);
    const warnings = logLines.slice(logsBefore).filter((l) => l.includes("XMPP_MAX_STANZA_BYTES"));
    assert.equal(warnings.length, 2, "one warning for each");
    for (const w of warnings) assert.match(w, new RegExp(`"from":"alice@${server.domain}"`), "it says who sent it");
    assert.deepEqual(rejections, []);
    assert.deepEqual(errorLines(), []);
    alice.received.length = 0;
  });

  test("many large multi-byte messages at once: every character arrives whole", async () => {
    await relink();
    const bodies = Array.from({ length: 40 }, (_, i) => `${i} ${"😀é€中".repeat(200)}`.slice(0, 1600));
    // What is checked is what arrives; the client's own write callbacks are bounded so that a stalled
    // one shows up as a clear failure below rather than as a file that never ends.
    const sends = Promise.all(bodies.map((b, i) => alice.send(xml("message", { to: `+1555222${String(4000 + i)}@${DOMAIN}`, type: "chat", id: `mb${i}` }, xml("body", {}, b)))));
    await Promise.race([sends, new Promise((r) => setTimeout(r, 10_000).unref())]);
    const end = Date.now() + 15_000;
    for (;;) {
      const out = (await sandboxMessages()).filter((m) => m.direction === "out" && bodies.includes(m.body));
      if (out.length === bodies.length) break;
      if (Date.now() > end) {
        const seen = (await sandboxMessages()).filter((m) => m.direction === "out" && /^\d+ /.test(m.body));
        assert.fail(
          `${out.length}/${bodies.length} arrived intact; damaged: ${seen
            .filter((m) => !bodies.includes(m.body))
            .map((m) => m.body.slice(0, 20))
            .join(", ")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // only this test's recipients: the generated stanzas above legitimately texted U+FFFD elsewhere
    const recipients = new Set(bodies.map((_, i) => `+1555222${String(4000 + i)}`));
    const ours = (await sandboxMessages()).filter((m) => m.direction === "out" && recipients.has(m.to));
    assert.equal(ours.length, bodies.length, "each sent once");
    assert.ok(!ours.some((m) => m.body.includes("\ufffd")));
  });
});
