// Opt-outs, segments, corrections/reactions/retractions, on-net delivery and contact introductions,
// end to end: real XMPP server and client, real Redis, the twilio SDK against the fake Twilio.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { inboundSmsParams, type FakeTwilio } from "../fakes/fake-twilio.js";
import type { TestGateway } from "../support/gateway.js";
import { startSmsStack, type SmsStack } from "../support/stack.js";
import { chat, errorCondition, errorText, isErrorFor } from "../support/stanzas.js";
import { postSigned } from "../support/twilio-webhooks.js";
import { until } from "../support/wait.js";
import { xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import type { XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SID = `AC${"2".repeat(32)}`;
const TOKEN = "fake-auth-token";
const PUBLIC = "https://gw.example.test";
const ALICE_NUMBER = "+15550001111";
const BOB_NUMBER = "+15550002222";
// Generous: the whole suite runs two servers side by side, and a loaded machine is slow.
const WAIT_MS = 15_000;

let stack: SmsStack;
let server: XmppServer;
let twilio: FakeTwilio;
let gw: TestGateway;
let alice: TestClient;
let bob: TestClient;

before(async () => {
  stack = await startSmsStack({
    domain: DOMAIN,
    accountSid: SID,
    authToken: TOKEN,
    publicUrl: PUBLIC,
    env: { OUTBOUND_RETRY_BASE_MS: "50" },
    users: [
      { username: "alice", password: "alice-pw", resource: "phone", phone: ALICE_NUMBER },
      { username: "bob", password: "bob-pw", resource: "laptop", phone: BOB_NUMBER },
    ],
  });
  ({ server, twilio, gw } = stack);
  ({ alice, bob } = stack.clients as { alice: TestClient; bob: TestClient });
  // Servers hand subscription requests only to resources that asked for the roster, as clients do.
  await Promise.all([alice, bob].map((c) => c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: "jabber:iq:roster" })))));
});

after(() => stack?.stop());

const contact = (n: string) => `${n}@${DOMAIN}`;
const wait = (c: TestClient, pred: (el: StanzaElement) => boolean) => c.waitFor(pred, WAIT_MS);

async function inbound(from: string, body: string, extra: Record<string, string> = {}, to = ALICE_NUMBER) {
  const params = { ...inboundSmsParams({ from, to, body, accountSid: SID }), ...extra };
  const res = await postSigned(gw.gateway.http, { authToken: TOKEN, publicUrl: PUBLIC }, "/twilio/sms", params);
  assert.equal(res.statusCode, 200);
  return params;
}

const bodyFrom = (from: string, re: RegExp) => (el: StanzaElement) =>
  el.name === "message" && el.attrs.type !== "error" && (el.attrs.from ?? "").startsWith(from) && re.test(el.getChildText("body") ?? "");

/** The create the fake Twilio received for `body` (waits for it). */
function createdWith(body: string, timeoutMs = WAIT_MS) {
  return until(() => twilio.created.find((c) => c.body === body), {
    what: () => `a create with body ${JSON.stringify(body)}; bodies: ${JSON.stringify(twilio.created.map((c) => c.body))}`,
    timeoutMs,
    intervalMs: 20,
  });
}

/** Sends and expects an error reply without any request reaching the fake Twilio. */
async function refusedUpFront(to: string, body: string, id: string) {
  const before = twilio.requests.length;
  await alice.send(chat(contact(to), body, { id }));
  const err = await alice.waitFor(isErrorFor(id), WAIT_MS);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(twilio.requests.length, before, "no provider call");
  return err;
}

describe("opt-outs", () => {
  test("STOP: the text is delivered, a note follows, and the next send is refused with forbidden and no provider call", async () => {
    const them = "+15554445555";
    const params = await inbound(them, " Stop ");
    await wait(alice, (el) => el.attrs.id === params.MessageSid && el.getChildText("body") === " Stop ");
    const note = await wait(alice, bodyFrom(contact(them), /^ℹ️ \+1 555 444 5555 replied STOP/));
    assert.equal(note.attrs.type, "chat");
    assert.match(note.getChildText("body") ?? "", /START to \+1 555 000 1111/);

    const err = await refusedUpFront(them, "are you there?", "stop-1");
    assert.equal(errorCondition(err), "forbidden");
    assert.equal(err.getChild("error")?.attrs.type, "auth");
    assert.equal(err.attrs.from, contact(them));
    assert.match(errorText(err), /replied STOP.*must text START to \+1 555 000 1111/);

    // START: a note, and texts go out again.
    await inbound(them, "START");
    await wait(alice, bodyFrom(contact(them), /^ℹ️ \+1 555 444 5555 opted back in/));
    await alice.send(chat(contact(them), "welcome back"));
    assert.equal((await createdWith("welcome back")).to, them);
  });

  test("a repeated STOP changes nothing and tells nothing", async () => {
    const them = "+15554445556";
    await inbound(them, "STOP");
    const isNote = bodyFrom(contact(them), /replied STOP/);
    await wait(alice, isNote);
    await inbound(them, "stop");
    await wait(alice, (el) => el.getChildText("body") === "stop" && el.attrs.from === contact(them));
    await alice.expectNone((el) => isNote(el) && alice.received.filter(isNote).length > 1, 500);
  });

  test("Twilio's OptOutType wins over the body (a custom keyword)", async () => {
    const them = "+15555556666";
    await inbound(them, "ARRET", { OptOutType: "STOP" });
    await wait(alice, bodyFrom(contact(them), /replied STOP/));
    assert.equal(errorCondition(await refusedUpFront(them, "hello?", "oot-1")), "forbidden");
  });

  test("21610 from Twilio puts the number on the ledger: the next send never reaches Twilio", async () => {
    const them = "+15556667777";
    twilio.failNext(1, { status: 400, code: 21610, message: "Attempt to send to unsubscribed recipient" });
    await alice.send(chat(contact(them), "first try", { id: "t21610-1" }));
    const first = await wait(alice, isErrorFor("t21610-1"));
    assert.equal(errorCondition(first), "forbidden");
    assert.match(errorText(first), /Twilio 21610/);
    const second = await refusedUpFront(them, "second try", "t21610-2");
    assert.equal(errorCondition(second), "forbidden");
    assert.match(errorText(second), /nothing was sent/);
  });
});

describe("SMS realities", () => {
  test("segments: 161 × 'a' goes out (2 GSM-7 segments); longer texts are refused saying why", async () => {
    const ok = "a".repeat(161);
    await alice.send(chat(contact("+15552223333"), ok));
    await createdWith(ok);

    const gsm = await refusedUpFront("+15552223333", "a".repeat(1531), "seg-gsm");
    assert.equal(errorCondition(gsm), "not-acceptable");
    assert.match(errorText(gsm), /1531 characters long, which is 11 SMS segments in GSM-7; this gateway sends at most 10/);

    // The same length class of text with one ç: UCS-2, 67 characters a segment.
    const ucs = await refusedUpFront("+15552223333", `${"a".repeat(700)}ç`, "seg-ucs");
    assert.equal(errorCondition(ucs), "not-acceptable");
    assert.match(errorText(ucs), /701 characters long, which is 11 SMS segments in UCS-2/);
    assert.match(errorText(ucs), /"ç"/);
    assert.match(errorText(ucs), /one such character makes the whole text UCS-2/);

    assert.match(errorText(await refusedUpFront("+15552223333", "a".repeat(1601), "seg-1600")), /1600/);
  });

  test("a correction (XEP-0308) goes out as a new text marked 'Correction: '", async () => {
    await alice.send(chat(contact("+15552223333"), "see you at 5", { id: "orig-1" }));
    await createdWith("see you at 5");
    await alice.send(chat(contact("+15552223333"), "see you at 6", { children: [xml("replace", { xmlns: "urn:xmpp:message-correct:0", id: "orig-1" })] }));
    await createdWith("Correction: see you at 6");
  });

  test("a reaction (XEP-0444) goes out as 'Reacted 👍', never as its fallback; removing it sends nothing", async () => {
    const to = contact("+15552223334");
    const fallback = xml("fallback", { xmlns: "urn:xmpp:fallback:0", for: "urn:xmpp:reactions:0" });
    await alice.send(chat(to, "👍", { children: [xml("reactions", { xmlns: "urn:xmpp:reactions:0", id: "SMabc" }, xml("reaction", {}, "👍")), fallback] }));
    assert.equal((await createdWith("Reacted 👍")).to, "+15552223334");
    const before = twilio.requests.length;
    await alice.send(chat(to, undefined, { id: "unreact", children: [xml("reactions", { xmlns: "urn:xmpp:reactions:0", id: "SMabc" })] }));
    await alice.expectNone(isErrorFor("unreact"), 400);
    assert.equal(twilio.requests.length, before);
    assert.ok(!twilio.created.some((c) => c.body === "👍"), "the fallback body is never texted");
  });

  test("a retraction (XEP-0424) sends nothing and the user is told texts cannot be unsent", async () => {
    const to = contact("+15552223335");
    const before = twilio.requests.length;
    await alice.send(
      chat(to, "This person attempted to retract a previous message, but it's unsupported by your client.", {
        children: [xml("retract", { xmlns: "urn:xmpp:message-retract:1", id: "orig-9" }), xml("fallback", { xmlns: "urn:xmpp:fallback:0", for: "urn:xmpp:message-retract:1" })],
      }),
    );
    const note = await wait(alice, bodyFrom(to, /cannot be unsent/));
    assert.match(note.getChildText("body") ?? "", /\+1 555 222 3335/);
    assert.equal(twilio.requests.length, before);
  });

  test("on-net: a text between two linked numbers arrives over XMPP, no SMS; receipt at once", async () => {
    const before = twilio.requests.length;
    await alice.send(chat(contact(BOB_NUMBER), "hi Bob, on-net", { id: "onnet-1", receipt: true }));
    const msg = await wait(bob, (el) => el.name === "message" && el.getChildText("body") === "hi Bob, on-net");
    assert.equal(msg.attrs.from, contact(ALICE_NUMBER));
    const receipt = await wait(alice, (el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "onnet-1");
    assert.equal(receipt.attrs.from, contact(BOB_NUMBER));
    // Bob had never heard from Alice's number: it introduced itself first.
    const sub = await wait(bob, (el) => el.name === "presence" && el.attrs.type === "subscribe" && el.attrs.from === contact(ALICE_NUMBER));
    assert.equal(sub.getChildText("nick", "http://jabber.org/protocol/nick"), "+1 555 000 1111");
    assert.ok(bob.received.indexOf(sub) < bob.received.indexOf(msg));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(twilio.requests.length, before, "the fake Twilio saw no create");
  });
});

describe("contacts look right", () => {
  test("the first SMS from a new number is preceded by a subscription request with a nickname, once", async () => {
    const them = "+15553334444";
    const isSub = (el: StanzaElement) => el.name === "presence" && el.attrs.type === "subscribe" && el.attrs.from === contact(them);
    const p1 = await inbound(them, "hello, new here");
    const m1 = await wait(alice, (el) => el.attrs.id === p1.MessageSid);
    const sub = await wait(alice, isSub);
    assert.equal(sub.getChildText("nick", "http://jabber.org/protocol/nick"), "+1 555 333 4444");
    assert.ok(alice.received.indexOf(sub) < alice.received.indexOf(m1), "the request comes before the message");
    const p2 = await inbound(them, "me again");
    await wait(alice, (el) => el.attrs.id === p2.MessageSid);
    await alice.expectNone((el) => isSub(el) && el !== sub, 500);
    assert.equal(await gw.gateway.redis.sIsMember(`sb:v1:user:alice@${server.domain}:introduced`, them), 1);
  });

  test("disco#info on a contact JID lists receipts, OOB and corrections", async () => {
    const res = await alice.iq(xml("iq", { to: contact("+15552223333"), type: "get" }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    const features =
      res
        .getChild("query")
        ?.getChildren("feature")
        .map((f) => f.attrs.var) ?? [];
    for (const f of ["urn:xmpp:receipts", "jabber:x:oob", "urn:xmpp:message-correct:0"]) assert.ok(features.includes(f), f);
  });
});
