// Twilio's webhooks as the adapter proves and reads them (adapters/twilio/webhooks.ts): which account's
// token must have signed a request, the connection overrides in the URL fragment (which never reach
// us), the numbers a user's own account may speak for, and what is read from the fields.
import assert from "node:assert/strict";
import { test } from "node:test";
import twilio from "twilio";
import { createTwilioWebhooks, readTwilioInbound, readTwilioStatus, signedUrls } from "../../src/adapters/twilio/webhooks.js";
import type { AccountProviders } from "../../src/core/policy/provider-router.js";
import type { ProviderWebhookRequest, SmsProvider } from "../../src/core/ports.js";
import { GatewayError } from "../../src/errors.js";

const MAIN = `AC${"1".repeat(32)}`;
const MAIN_TOKEN = "main-token";
const OWN = `AC${"a".repeat(32)}`;
const OWN_TOKEN = "own-token";
const URL_AS_RECEIVED = "https://sms.example.com/twilio/sms";
const params = (extra: Record<string, string> = {}) => ({ MessageSid: `SM${"a".repeat(32)}`, From: "+15552223333", To: "+15550001111", Body: "hi", ...extra });
const sign = (url: string, p: Record<string, string>, token = MAIN_TOKEN) => twilio.getExpectedTwilioSignature(token, url, p);
const request = (url: string, p: Record<string, string>, signature?: string): ProviderWebhookRequest => ({ url, headers: signature === undefined ? {} : { "x-twilio-signature": signature }, body: p });
const stub = {} as SmsProvider;

const accounts: AccountProviders = {
  async get(sid) {
    return sid === OWN ? { provider: stub, numbers: ["+15550002222"], authToken: OWN_TOKEN } : undefined;
  },
};

/** What authenticate did: the signer's account, or the refusal's code. */
async function outcome(p: Promise<{ account?: string }>): Promise<string> {
  try {
    return `ok:${(await p).account ?? ""}`;
  } catch (err) {
    return err instanceof GatewayError ? `refused:${err.code}` : `threw:${String(err)}`;
  }
}

test("without a configured fragment only the URL as received is signed", () => {
  assert.deepEqual(signedUrls(URL_AS_RECEIVED, undefined), [URL_AS_RECEIVED]);
});

test("with the overrides configured, signatures over either form of the URL pass; nothing else does", async () => {
  const hooks = createTwilioWebhooks({ mainAccountSid: MAIN, mainAuthToken: MAIN_TOKEN, urlFragment: "rc=3&rp=all" });
  const p = params();
  assert.equal(await outcome(hooks.authenticate("inbound", request(URL_AS_RECEIVED, p, sign(URL_AS_RECEIVED, p)))), `ok:${MAIN}`);
  assert.equal(await outcome(hooks.authenticate("inbound", request(URL_AS_RECEIVED, p, sign(`${URL_AS_RECEIVED}#rc=3&rp=all`, p)))), `ok:${MAIN}`);
  assert.equal(await outcome(hooks.authenticate("inbound", request(URL_AS_RECEIVED, p, sign(`${URL_AS_RECEIVED}#rc=5`, p)))), "refused:forbidden", "another fragment");
  assert.equal(await outcome(hooks.authenticate("inbound", request(URL_AS_RECEIVED, p, sign(URL_AS_RECEIVED, p, "wrong-token")))), "refused:forbidden");
  assert.equal(await outcome(hooks.authenticate("inbound", request(URL_AS_RECEIVED, p))), "refused:forbidden", "no signature");
});

test("a user's own account signs with its own token and speaks only for its numbers; any other request is the gateway's", async () => {
  const hooks = createTwilioWebhooks({ mainAccountSid: MAIN, mainAuthToken: MAIN_TOKEN, accounts });
  const mine = params({ AccountSid: OWN, To: "+15550002222" });
  assert.equal(await outcome(hooks.authenticate("inbound", request(URL_AS_RECEIVED, mine, sign(URL_AS_RECEIVED, mine, OWN_TOKEN)))), `ok:${OWN}`);
  assert.equal(
    await outcome(hooks.authenticate("inbound", request(URL_AS_RECEIVED, mine, sign(URL_AS_RECEIVED, mine)))),
    "refused:forbidden",
    "the gateway's token does not sign for a user's account",
  );
  const elsewhere = params({ AccountSid: OWN, To: "+15550001111" });
  assert.equal(await outcome(hooks.authenticate("inbound", request(URL_AS_RECEIVED, elsewhere, sign(URL_AS_RECEIVED, elsewhere, OWN_TOKEN)))), "refused:forbidden", "not its number");
  const status = { MessageSid: `SM${"b".repeat(32)}`, MessageStatus: "delivered", AccountSid: OWN, From: "+15550001111" };
  assert.equal(
    await outcome(hooks.authenticate("status", request(URL_AS_RECEIVED, status, sign(URL_AS_RECEIVED, status, OWN_TOKEN)))),
    "refused:forbidden",
    "a status callback's From must be its number",
  );
  const unknown = params({ AccountSid: `AC${"f".repeat(32)}` });
  assert.equal(
    await outcome(hooks.authenticate("inbound", request(URL_AS_RECEIVED, unknown, sign(URL_AS_RECEIVED, unknown)))),
    `ok:${MAIN}`,
    "an account nobody registered: the gateway's token decides, and the gateway is the signer",
  );
  const down = createTwilioWebhooks({ mainAccountSid: MAIN, mainAuthToken: MAIN_TOKEN, accounts: { get: () => Promise.reject(new Error("redis away")) } });
  assert.equal(await outcome(down.authenticate("inbound", request(URL_AS_RECEIVED, mine, sign(URL_AS_RECEIVED, mine, OWN_TOKEN)))), "refused:unavailable");
});

test("an inbound webhook is read with its media, OptOutType and signer; a status with our id from the query", () => {
  const sms = readTwilioInbound(
    { ...params({ MediaUrl0: "https://api.twilio.com/m/0", MediaContentType0: "image/png", MediaUrl1: "javascript:alert(1)", OptOutType: "STOP" }), NumMedia: 2, Body: "hi" },
    OWN,
  );
  assert.deepEqual(sms, {
    providerId: `SM${"a".repeat(32)}`,
    account: OWN,
    from: "+15552223333",
    to: "+15550001111",
    body: "hi",
    media: [{ url: "https://api.twilio.com/m/0", contentType: "image/png" }],
    optOutType: "STOP",
  });
  assert.deepEqual(readTwilioStatus({ MessageSid: `SM${"b".repeat(32)}`, MessageStatus: "Delivered", ErrorCode: 30003 }, { id: "01JABC" }), {
    providerId: `SM${"b".repeat(32)}`,
    status: "delivered",
    id: "01JABC",
    errorCode: 30003,
  });
  assert.deepEqual(readTwilioStatus({ MessageSid: `SM${"b".repeat(32)}`, MessageStatus: "sent" }, {}), { providerId: `SM${"b".repeat(32)}`, status: "sent" });
});
