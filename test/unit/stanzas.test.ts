import assert from "node:assert/strict";
import { test } from "node:test";
import xml from "@xmpp/xml";
import { deliveryStanza, errorReply } from "../../src/xmpp/stanzas.js";

test("error reply swaps addresses, keeps the id, carries condition and English text", () => {
  const original = xml("message", { from: "a@x/r", to: "+15552223333@sms.x", id: "m1", type: "chat" }, xml("body", {}, "hi"));
  const el = errorReply(original, "auth", "registration-required", "Not linked");
  assert.equal(
    el.toString(),
    `<message type="error" id="m1" from="+15552223333@sms.x" to="a@x/r"><error type="auth"><registration-required xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">Not linked</text></error></message>`,
  );
});

test("inbound chat: body, OOB per media URL, delay only when late", () => {
  const item = { kind: "chat" as const, id: "SM1", from: "+15552223333@sms.x", to: "a@x", body: "pic\nhttps://m/1", mediaUrls: ["https://m/1"], acceptedAt: Date.UTC(2026, 0, 2, 3, 4, 5) };
  const late = deliveryStanza(item, { domain: "sms.x", late: true });
  assert.equal(late.attrs.id, "SM1");
  assert.equal(late.attrs.type, "chat");
  assert.equal(late.getChildText("body"), "pic\nhttps://m/1");
  assert.equal(late.getChild("x", "jabber:x:oob")?.getChildText("url"), "https://m/1");
  assert.equal(late.getChild("delay", "urn:xmpp:delay")?.attrs.stamp, "2026-01-02T03:04:05.000Z");
  assert.equal(deliveryStanza(item, { domain: "sms.x", late: false }).getChild("delay", "urn:xmpp:delay"), undefined);
});

test("receipt names the original id and requests nothing", () => {
  const el = deliveryStanza({ kind: "receipt", id: "01J", from: "+1@s", to: "a@x/r", receiptFor: "orig" }, { domain: "s", late: false });
  assert.equal(el.getChild("received", "urn:xmpp:receipts")?.attrs.id, "orig");
  assert.equal(el.getChild("request", "urn:xmpp:receipts"), undefined);
  assert.equal(el.getChild("body"), undefined);
});

test("error delivery answers the original stanza id", () => {
  const el = deliveryStanza(
    { kind: "error", id: "01J", from: "+1@s", to: "a@x/r", replyTo: "orig", condition: "jid-malformed", type: "modify", text: "Twilio 21211: bad" },
    { domain: "s", late: false },
  );
  assert.equal(el.attrs.type, "error");
  assert.equal(el.attrs.id, "orig");
  assert.equal(el.getChild("error")?.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas"), "Twilio 21211: bad");
});
