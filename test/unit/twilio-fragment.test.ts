// Twilio connection overrides (#rc=…&rp=…) sit in the webhook URL's fragment, which never reaches us:
// with TWILIO_URL_FRAGMENT set, a signature over the URL with or without it is accepted; nothing else is.
import assert from "node:assert/strict";
import { test } from "node:test";
import twilio from "twilio";
import type { SmsProvider } from "../../src/core/ports.js";
import { withUrlFragment } from "../../src/http/twilio-routes.js";

const TOKEN = "token-for-fragment-test";
const URL_AS_RECEIVED = "https://sms.example.com/twilio/sms";
const params = { MessageSid: `SM${"a".repeat(32)}`, From: "+15552223333", To: "+15550001111", Body: "hi" };

const provider: SmsProvider & { close(): Promise<void> } = {
  name: "twilio",
  send: () => Promise.reject(new Error("unused")),
  lookup: () => Promise.reject(new Error("unused")),
  validateSignature: (sig, url, p) => sig !== undefined && twilio.validateRequest(TOKEN, sig, url, p),
  close: async () => undefined,
} as SmsProvider & { close(): Promise<void> };

const sign = (url: string, token = TOKEN) => twilio.getExpectedTwilioSignature(token, url, params);

test("without a configured fragment the provider is used as it is", () => {
  assert.equal(withUrlFragment(provider, undefined), provider);
});

test("with the overrides configured, signatures over either form of the URL pass", () => {
  const p = withUrlFragment(provider, "rc=3&rp=all");
  assert.equal(p.name, "twilio");
  assert.equal(p.validateSignature(sign(URL_AS_RECEIVED), URL_AS_RECEIVED, params), true);
  assert.equal(p.validateSignature(sign(`${URL_AS_RECEIVED}#rc=3&rp=all`), URL_AS_RECEIVED, params), true);
  assert.equal(p.validateSignature(sign(`${URL_AS_RECEIVED}#rc=5`), URL_AS_RECEIVED, params), false, "another fragment");
  assert.equal(p.validateSignature(sign(URL_AS_RECEIVED, "wrong-token"), URL_AS_RECEIVED, params), false);
  assert.equal(p.validateSignature(undefined, URL_AS_RECEIVED, params), false);
});
