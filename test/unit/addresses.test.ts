import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizeNumber, parseContactLocalpart, parseJid, parseUserBareJid, senderLocalpart, toE164 } from "../../src/core/model/addresses.js";
import { GatewayError } from "../../src/errors.js";

test("phone localparts: any possible E.164 number, including fictional 555 ones", () => {
  assert.deepEqual(parseContactLocalpart("+15552223333"), { kind: "phone", e164: "+15552223333" });
  assert.deepEqual(parseContactLocalpart("+447700900123"), { kind: "phone", e164: "+447700900123" });
});

test("a + localpart that is not a possible number is jid-malformed with the expected form", () => {
  for (const bad of ["+1555", "+1 555 222 3333", "+abc", "+15552223333x", "+"]) {
    assert.throws(
      () => parseContactLocalpart(bad),
      (e: unknown) => e instanceof GatewayError && e.condition === "jid-malformed" && e.stanzaType === "modify" && /\+15552223333/.test(e.userText),
      bad,
    );
  }
});

test("short codes, alphanumeric senders and webhook names", () => {
  assert.deepEqual(parseContactLocalpart("72975"), { kind: "shortcode", digits: "72975" });
  assert.deepEqual(parseContactLocalpart("~amazon"), { kind: "alphanumeric", name: "amazon" });
  assert.deepEqual(parseContactLocalpart("deploybot"), { kind: "webhook", name: "deploybot" });
  assert.throws(() => parseContactLocalpart("Not Valid!"), GatewayError);
});

test("sender localparts from provider addresses", () => {
  assert.equal(senderLocalpart("+15552223333"), "+15552223333");
  assert.equal(senderLocalpart("72975"), "72975");
  assert.equal(senderLocalpart("Amazon"), "~amazon");
  assert.equal(senderLocalpart("My Bank"), "~mybank");
});

test("national numbers through DEFAULT_REGION (XEP-0100)", () => {
  assert.equal(normalizeNumber("(555) 222-3333", "US"), "+15552223333");
  assert.equal(normalizeNumber("555.222.3333", "US"), "+15552223333");
  assert.equal(normalizeNumber("07700 900123", "GB"), "+447700900123");
  assert.equal(normalizeNumber("+1 555 222 3333", "GB"), "+15552223333");
  assert.equal(normalizeNumber("12", "US"), undefined);
  assert.equal(normalizeNumber("hello", "US"), undefined);
  assert.equal(toE164("+1555"), undefined);
});

test("JIDs", () => {
  assert.deepEqual(parseJid("Alice@Example.com/Phone"), { local: "alice", domain: "example.com", resource: "Phone" });
  assert.equal(parseUserBareJid("alice@example.com"), "alice@example.com");
  assert.equal(parseUserBareJid("alice@example.com/res"), undefined);
  assert.equal(parseUserBareJid("example.com"), undefined);
  assert.equal(parseUserBareJid("a@b@c"), undefined);
  assert.equal(parseUserBareJid(""), undefined);
});
