// The SMS path end to end: a real XMPP server and client, real Redis, the real twilio SDK against the
// fake Twilio. Servers start once for the file.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { inboundSmsParams, statusCallbackParams, type FakeTwilio } from "../fakes/fake-twilio.js";
import type { TestGateway } from "../support/gateway.js";
import { startSmsStack, type SmsStack } from "../support/stack.js";
import { chat, errorCondition, errorText, isErrorFor, STANZAS } from "../support/stanzas.js";
import { signedPoster } from "../support/twilio-webhooks.js";
import { xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import type { XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SID = `AC${"1".repeat(32)}`;
const TOKEN = "fake-auth-token";
const PUBLIC = "https://gw.example.test/prefix";
const ALICE_NUMBER = "+15550001111";
const CONTACT = `+15552223333@${DOMAIN}`;

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
      { username: "bob", password: "bob-pw" },
    ],
  });
  ({ server, twilio, gw } = stack);
  ({ alice, bob } = stack.clients as { alice: TestClient; bob: TestClient });
});

after(() => stack?.stop());

const postSigned = signedPoster(() => gw.gateway.http, { authToken: TOKEN, publicUrl: PUBLIC });

/** Sends a message from alice and returns the create request the fake Twilio recorded for it. */
async function sendAndCapture(body: string, extra: { id?: string; receipt?: boolean } = {}) {
  const before = twilio.requests.length;
  await alice.send(chat(CONTACT, body, extra));
  const reqs = await twilio.waitForRequests(before + 1, 5000);
  const req = reqs[before]!;
  const cb = String(req.form.StatusCallback);
  const id = new URL(cb).searchParams.get("id")!;
  return { req, id, sid: twilio.created.find((m) => m.body === body)?.sid };
}

describe("XMPP → SMS", () => {
  test("a linked user's message becomes exactly the Twilio request it should", async () => {
    const { req, id } = await sendAndCapture("Hello from XMPP é");
    assert.equal(req.method, "POST");
    assert.equal(req.path, `/2010-04-01/Accounts/${SID}/Messages.json`);
    assert.equal(req.headers.authorization, `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString("base64")}`);
    assert.equal(req.form.From, ALICE_NUMBER);
    assert.equal(req.form.To, "+15552223333");
    assert.equal(req.form.Body, "Hello from XMPP é");
    assert.equal(req.form.StatusCallback, `${PUBLIC}/twilio/status?id=${id}`);
    assert.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/, "a ULID of ours");
  });

  test("delivered → one receipt from the contact, even when the callback repeats", async () => {
    const { id, sid } = await sendAndCapture("receipt please", { id: "rcpt-1", receipt: true });
    assert.ok(sid);
    const params = statusCallbackParams({ sid: sid!, status: "delivered", from: ALICE_NUMBER, to: "+15552223333", accountSid: SID });
    for (const status of ["sent", "delivered", "delivered", "sent"]) {
      const res = await postSigned(`/twilio/status?id=${id}`, { ...params, MessageStatus: status, SmsStatus: status });
      assert.equal(res.statusCode, 200);
    }
    const isReceipt = (el: StanzaElement) => el.name === "message" && el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "rcpt-1";
    const receipt = await alice.waitFor(isReceipt);
    assert.equal(receipt.attrs.from, CONTACT);
    await alice.expectNone((el) => isReceipt(el) && el !== receipt, 700);
    assert.equal(alice.received.filter(isReceipt).length, 1);
  });

  test("a callback that arrives before the create's answer counts once the answer names the same message", async () => {
    twilio.failNext(1, { answerDelayMs: 800 });
    const before = twilio.requests.length;
    await alice.send(chat(CONTACT, "early bird", { id: "early-1", receipt: true }));
    const [req] = (await twilio.waitForRequests(before + 1, 5000)).slice(before);
    const id = new URL(String(req!.form.StatusCallback)).searchParams.get("id")!;
    // Twilio has the message (and reports it delivered) while its answer to the create is still on the way.
    const created = twilio.created.find((m) => m.body === "early bird")!;
    const res = await postSigned(`/twilio/status?id=${id}`, statusCallbackParams({ sid: created.sid, status: "delivered", from: ALICE_NUMBER, to: "+15552223333", accountSid: SID }));
    assert.equal(res.statusCode, 200);
    const isReceipt = (el: StanzaElement) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "early-1";
    await alice.waitFor(isReceipt, 5000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(alice.received.filter(isReceipt).length, 1);
  });

  test("a callback naming another SID than the create returns is never applied", async () => {
    twilio.failNext(1, { answerDelayMs: 600 });
    const before = twilio.requests.length;
    await alice.send(chat(CONTACT, "not that one", { id: "other-sid-1", receipt: true }));
    const [req] = (await twilio.waitForRequests(before + 1, 5000)).slice(before);
    const id = new URL(String(req!.form.StatusCallback)).searchParams.get("id")!;
    // Signed with the right account, but for a message this one is not: before and after the answer.
    const forged = statusCallbackParams({ sid: `SM${"e".repeat(32)}`, status: "undelivered", errorCode: 30003, from: ALICE_NUMBER, to: "+15552223333", accountSid: SID });
    assert.equal((await postSigned(`/twilio/status?id=${id}`, forged)).statusCode, 200);
    await new Promise((r) => setTimeout(r, 1000)); // the create has answered meanwhile
    const forgedDelivered = statusCallbackParams({ sid: `SM${"e".repeat(32)}`, status: "delivered", from: ALICE_NUMBER, to: "+15552223333", accountSid: SID });
    assert.equal((await postSigned(`/twilio/status?id=${id}`, forgedDelivered)).statusCode, 200);
    await alice.expectNone((el) => el.attrs.id === "other-sid-1" || el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "other-sid-1", 800);
    // The real one still counts.
    const created = twilio.created.find((m) => m.body === "not that one")!;
    await postSigned(`/twilio/status?id=${id}`, statusCallbackParams({ sid: created.sid, status: "delivered", from: ALICE_NUMBER, to: "+15552223333", accountSid: SID }));
    await alice.waitFor((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "other-sid-1", 5000);
  });

  test("failed → an error reply to the original stanza with the provider's code", async () => {
    const { id, sid } = await sendAndCapture("will fail", { id: "fail-1" });
    await postSigned(`/twilio/status?id=${id}`, statusCallbackParams({ sid: sid!, status: "undelivered", errorCode: 30003, from: ALICE_NUMBER, to: "+15552223333", accountSid: SID }));
    const err = await alice.waitFor(isErrorFor("fail-1"));
    assert.equal(err.attrs.from, CONTACT);
    assert.equal(errorCondition(err), "recipient-unavailable");
    assert.match(errorText(err), /30003/);
  });

  test("a Twilio error becomes a stanza error carrying its code and meaning", async () => {
    const cases: [number, number, string][] = [
      [400, 21211, "jid-malformed"],
      [400, 21610, "forbidden"],
      [400, 21408, "not-allowed"],
      [400, 21614, "not-acceptable"],
    ];
    for (const [status, code, condition] of cases) {
      twilio.failNext(1, { status, code, message: `Twilio says ${code}` });
      const id = `err-${code}`;
      // 21610 puts the number on the opt-out ledger (later sends refused up front): use a number of its own.
      await alice.send(chat(code === 21610 ? `+15552229999@${DOMAIN}` : CONTACT, `error ${code}`, { id }));
      const err = await alice.waitFor(isErrorFor(id));
      assert.equal(errorCondition(err), condition, `code ${code}`);
      assert.match(errorText(err), new RegExp(`Twilio ${code}`));
    }
  });

  test("429 is retried, then the message goes out once", async () => {
    twilio.failNext(2, { status: 429, code: 20429 });
    const before = twilio.created.length;
    await alice.send(chat(CONTACT, "after the storm", { id: "retry-1" }));
    const end = Date.now() + 5000;
    while (twilio.created.length === before && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.equal(twilio.created.filter((m) => m.body === "after the storm").length, 1);
    await alice.expectNone(isErrorFor("retry-1"), 300);
  });

  test("a resent stanza id texts the phone once; a new id or another sender is a new text", async () => {
    const count = (body: string) => twilio.created.filter((m) => m.body === body).length;
    const before = twilio.requests.length;
    // The same id twice at once (a client resending while the first is still in flight), then again later.
    await Promise.all([alice.send(chat(CONTACT, "only once", { id: "resend-1" })), alice.send(chat(CONTACT, "only once", { id: "resend-1" }))]);
    await twilio.waitForRequests(before + 1, 5000);
    await alice.send(chat(CONTACT, "only once", { id: "resend-1" }));
    await alice.send(chat(CONTACT, "only once", { id: "resend-2" })); // the same words under a new id: a new text
    const end = Date.now() + 5000;
    while (count("only once") < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300)); // a third create, if one were coming, comes now
    assert.equal(count("only once"), 2);
    await alice.expectNone(isErrorFor("resend-1"), 100);
  });

  test("an unlinked user gets registration-required and nothing is sent", async () => {
    const before = twilio.requests.length;
    await bob.send(chat(CONTACT, "am I linked?", { id: "bob-1" }));
    const err = await bob.waitFor(isErrorFor("bob-1"));
    assert.equal(errorCondition(err), "registration-required");
    assert.equal(err.getChild("error")?.attrs.type, "auth");
    assert.ok(errorText(err).length > 10);
    assert.equal(twilio.requests.length, before);
  });

  test("body-less and encrypted messages never become SMS", async () => {
    const before = twilio.requests.length;
    await alice.send(chat(CONTACT, undefined, { id: "state-1", children: [xml("composing", { xmlns: "http://jabber.org/protocol/chatstates" })] }));
    await alice.send(
      chat(CONTACT, "I sent you an OMEMO encrypted message but your client doesn't seem to support that.", {
        id: "omemo-1",
        children: [
          xml("encrypted", { xmlns: "eu.siacs.conversations.axolotl" }, xml("header", { sid: "1" })),
          xml("encryption", { xmlns: "urn:xmpp:eme:0", namespace: "eu.siacs.conversations.axolotl" }),
        ],
      }),
    );
    const err = await alice.waitFor(isErrorFor("omemo-1"));
    assert.equal(errorCondition(err), "not-acceptable");
    assert.match(errorText(err), /encrypt/i);
    await alice.expectNone(isErrorFor("state-1"), 300);
    assert.equal(twilio.requests.length, before);
  });

  test("bad addresses and group chats are refused with a readable error", async () => {
    await alice.send(chat(`+1555@${DOMAIN}`, "short", { id: "bad-1" }));
    const e1 = await alice.waitFor(isErrorFor("bad-1"));
    assert.equal(errorCondition(e1), "jid-malformed");
    assert.match(errorText(e1), /\+15552223333/);
    await alice.send(xml("message", { to: CONTACT, type: "groupchat", id: "gc-1" }, xml("body", {}, "hi all")));
    assert.equal(errorCondition(await alice.waitFor(isErrorFor("gc-1"))), "not-acceptable");
    await alice.send(chat(CONTACT, "x".repeat(1601), { id: "long-1" }));
    assert.equal(errorCondition(await alice.waitFor(isErrorFor("long-1"))), "not-acceptable");
  });
});

describe("SMS → XMPP", () => {
  test("a signed inbound SMS arrives as a chat message from the number, with a stable id", async () => {
    const params = inboundSmsParams({ from: "+15552223333", to: ALICE_NUMBER, body: "Hi Alice", accountSid: SID });
    const res = await postSigned("/twilio/sms", params);
    assert.equal(res.statusCode, 200);
    assert.match(res.headers["content-type"] as string, /xml/);
    assert.match(res.body, /<Response\/>/);
    const msg = await alice.waitFor((el) => el.name === "message" && el.getChildText("body") === "Hi Alice");
    assert.equal(msg.attrs.from, CONTACT);
    assert.equal(msg.attrs.type, "chat");
    assert.equal(msg.attrs.id, params.MessageSid);
  });

  test("the same MessageSid twice delivers one message", async () => {
    const params = inboundSmsParams({ from: "+15552223333", to: ALICE_NUMBER, body: "only once", accountSid: SID });
    assert.equal((await postSigned("/twilio/sms", params)).statusCode, 200);
    assert.equal((await postSigned("/twilio/sms", params)).statusCode, 200);
    const isIt = (el: StanzaElement) => el.getChildText("body") === "only once";
    await alice.waitFor(isIt);
    await alice.expectNone((el) => isIt(el) && alice.received.filter(isIt).length > 1, 700);
    assert.equal(alice.received.filter(isIt).length, 1);
  });

  test("a bad signature gets 403 and delivers nothing", async () => {
    const params = inboundSmsParams({ from: "+15552223333", to: ALICE_NUMBER, body: "forged", accountSid: SID });
    const res = await postSigned("/twilio/sms", params, { badSignature: true });
    assert.equal(res.statusCode, 403);
    const unsigned = await gw.gateway.http.inject({
      method: "POST",
      url: "/twilio/sms",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: new URLSearchParams(params).toString(),
    });
    assert.equal(unsigned.statusCode, 403);
    await alice.expectNone((el) => el.getChildText("body") === "forged", 700);
  });

  test("MMS media arrive as OOB and in the body, re-hosted by the gateway", async () => {
    // More in media.test.ts.
    const media = twilio.addMedia({ accountSid: SID, bytes: Buffer.from("jpeg bytes"), contentType: "image/jpeg" });
    const params = inboundSmsParams({ from: "+15552223333", to: ALICE_NUMBER, body: "a photo", accountSid: SID, sid: media.messageSid, media: [{ url: media.url, contentType: "image/jpeg" }] });
    assert.equal((await postSigned("/twilio/sms", params)).statusCode, 200);
    const msg = await alice.waitFor((el) => (el.getChildText("body") ?? "").startsWith("a photo"));
    const url = msg.getChild("x", "jabber:x:oob")?.getChildText("url") ?? "";
    assert.match(url, /^https:\/\/gw\.example\.test\/prefix\/media\/[A-Za-z0-9_-]{43}\/picture\.jpg$/);
    assert.equal(msg.getChildText("body"), `a photo\n${url}`);
  });

  test("an SMS to a number nobody linked is acknowledged and dropped", async () => {
    const params = inboundSmsParams({ from: "+15552223333", to: "+15550009999", body: "anyone?", accountSid: SID });
    assert.equal((await postSigned("/twilio/sms", params)).statusCode, 200);
  });

  test("missing fields are a 400 problem naming the field (after a valid signature)", async () => {
    const res = await postSigned("/twilio/sms", { From: "+15552223333", Body: "no sid" });
    assert.equal(res.statusCode, 400);
    assert.match(res.headers["content-type"] as string, /application\/problem\+json/);
    assert.match(JSON.parse(res.body).detail as string, /MessageSid|To/);
  });
});

describe("XMPP citizenship", () => {
  const iqTo = (to: string, type: "get" | "set", child: StanzaElement) => alice.iq(xml("iq", { to, type }, child));

  test("disco#info on the gateway: gateway/sms identity and honest features", async () => {
    const res = await iqTo(DOMAIN, "get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }));
    assert.equal(res.attrs.type, "result");
    const q = res.getChild("query", "http://jabber.org/protocol/disco#info")!;
    const identity = q.getChild("identity")!;
    assert.equal(identity.attrs.category, "gateway");
    assert.equal(identity.attrs.type, "sms");
    const features = q.getChildren("feature").map((f) => f.attrs.var);
    for (const f of ["jabber:iq:gateway", "urn:xmpp:ping", "jabber:iq:version", "urn:xmpp:receipts", "jabber:iq:register", "http://jabber.org/protocol/commands"]) assert.ok(features.includes(f), f);
  });

  test("disco#info on a contact JID", async () => {
    const res = await iqTo(CONTACT, "get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }));
    assert.equal(res.attrs.type, "result");
    assert.equal(res.attrs.from, CONTACT);
  });

  test("jabber:iq:gateway translates a national number", async () => {
    const get = await iqTo(DOMAIN, "get", xml("query", { xmlns: "jabber:iq:gateway" }));
    assert.ok(get.getChild("query")?.getChildText("prompt"));
    const set = await iqTo(DOMAIN, "set", xml("query", { xmlns: "jabber:iq:gateway" }, xml("prompt", {}, "(555) 222-3333")));
    assert.equal(set.getChild("query")?.getChildText("jid"), CONTACT);
    const bad = await iqTo(DOMAIN, "set", xml("query", { xmlns: "jabber:iq:gateway" }, xml("prompt", {}, "not a number")));
    assert.equal(bad.attrs.type, "error");
    assert.ok(errorText(bad));
  });

  test("ping and version", async () => {
    assert.equal((await iqTo(DOMAIN, "get", xml("ping", { xmlns: "urn:xmpp:ping" }))).attrs.type, "result");
    assert.equal((await iqTo(CONTACT, "get", xml("ping", { xmlns: "urn:xmpp:ping" }))).attrs.type, "result");
    const v = await iqTo(DOMAIN, "get", xml("query", { xmlns: "jabber:iq:version" }));
    assert.equal(v.getChild("query")?.getChildText("name"), "Switchboard");
  });

  test("an unknown IQ gets exactly one service-unavailable", async () => {
    const res = await iqTo(DOMAIN, "get", xml("query", { xmlns: "urn:example:nothing" }));
    assert.equal(res.attrs.type, "error");
    assert.equal(errorCondition(res), "service-unavailable");
    await alice.expectNone((el) => el.name === "iq" && el.attrs.id === res.attrs.id && el !== res, 500);
  });

  test("subscribing to a contact is accepted, and the contact shows as available", async () => {
    // Servers only forward subscription answers to resources that asked for the roster, as real clients do.
    await alice.iq(xml("iq", { type: "get" }, xml("query", { xmlns: "jabber:iq:roster" })));
    await alice.send(xml("presence", { to: CONTACT, type: "subscribe" }));
    await alice.waitFor((el) => el.name === "presence" && el.attrs.type === "subscribed" && el.attrs.from === CONTACT);
    await alice.waitFor((el) => el.name === "presence" && !el.attrs.type && (el.attrs.from ?? "").startsWith(CONTACT));
    await alice.waitFor((el) => el.getChild("query", "jabber:iq:roster")?.getChild("item")?.attrs.subscription === "to");
  });

  test("an error is never answered with an error", async () => {
    await alice.send(xml("message", { to: CONTACT, type: "error", id: "e-1" }, xml("error", { type: "cancel" }, xml("item-not-found", { xmlns: STANZAS }))));
    await alice.expectNone((el) => el.attrs.id === "e-1", 500);
  });
});

describe("admin API", () => {
  test("needs the bearer token", async () => {
    const res = await gw.gateway.http.inject({ method: "GET", url: "/api/v1/users" });
    assert.equal(res.statusCode, 401);
    assert.match(res.headers["content-type"] as string, /problem\+json/);
    const wrong = await gw.gateway.http.inject({ method: "GET", url: "/api/v1/users", headers: { authorization: "Bearer nope" } });
    assert.equal(wrong.statusCode, 401);
  });

  test("link, read, list, replace, conflict, unlink", async () => {
    const carol = `carol@${server.domain}`;
    assert.equal((await gw.admin("PUT", `/api/v1/users/${carol}`, { phone: "+15550002222" })).status, 201);
    assert.deepEqual((await gw.admin("GET", `/api/v1/users/${carol}`)).json, { jid: carol, phone: "+15550002222" });
    const replaced = await gw.admin("PUT", `/api/v1/users/${carol}`, { phone: "+15550003333" });
    assert.equal(replaced.status, 200);
    const conflict = await gw.admin("PUT", `/api/v1/users/dave@${server.domain}`, { phone: ALICE_NUMBER });
    assert.equal(conflict.status, 409);
    assert.match(JSON.stringify(conflict.json), /already linked/);
    const list = (await gw.admin("GET", "/api/v1/users")).json as { users: { jid: string; phone: string }[] };
    assert.ok(list.users.some((u) => u.jid === carol && u.phone === "+15550003333"));
    assert.equal((await gw.admin("DELETE", `/api/v1/users/${carol}`)).status, 204);
    assert.equal((await gw.admin("GET", `/api/v1/users/${carol}`)).status, 404);
    assert.equal((await gw.admin("DELETE", `/api/v1/users/${carol}`)).status, 404);
    // The old number is free again.
    assert.equal((await gw.admin("PUT", `/api/v1/users/dave@${server.domain}`, { phone: "+15550002222" })).status, 201);
  });

  test("bad input is a problem naming the field", async () => {
    const badPhone = await gw.admin("PUT", `/api/v1/users/erin@${server.domain}`, { phone: "12" });
    assert.equal(badPhone.status, 400);
    assert.equal((badPhone.json as { field: string }).field, "body.phone");
    const badJid = await gw.admin("PUT", `/api/v1/users/${encodeURIComponent("erin@example.com/res")}`, { phone: "+15550004444" });
    assert.equal(badJid.status, 400);
    assert.equal((badJid.json as { field: string }).field, "params.jid");
    const missing = await gw.admin("PUT", `/api/v1/users/erin@${server.domain}`, {});
    assert.equal((missing.json as { field: string }).field, "body.phone");
  });
});
