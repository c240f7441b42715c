// Registration from any client: XEP-0077, XEP-0050 ad-hoc commands and chat commands, in both modes
// (REGISTRATION=admin, then byo against the fake Twilio). One gateway at a time: Prosody takes one
// component connection per domain.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { keys } from "../../src/adapters/redis/keys.js";
import { inboundSmsParams, startFakeTwilio, type FakeTwilio } from "../fakes/fake-twilio.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { errorCondition, errorText } from "../support/stanzas.js";
import { postSigned } from "../support/twilio-webhooks.js";
import { connectClient, xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const PUBLIC = "https://gw.example.test/sb";
const MAIN_SID = `AC${"1".repeat(32)}`;
const MAIN_TOKEN = "main-token";
// Users' own accounts (byo): alice's, and bob's whose number sits in a Messaging Service.
const ALICE_SID = `AC${"a".repeat(32)}`;
const ALICE_TOKEN = "alice-own-token";
const BOB_SID = `AC${"b".repeat(32)}`;
const BOB_TOKEN = "bob-own-token";
const ALICE_NUMBER = "+15550002222";
const BOB_NUMBER = "+15550003333";
const MG = `MG${"c".repeat(32)}`;

const NS_REGISTER = "jabber:iq:register";
const NS_COMMANDS = "http://jabber.org/protocol/commands";
const NS_DATA = "jabber:x:data";

let redis: RedisServer;
let server: XmppServer;
let twilio: FakeTwilio;
let alice: TestClient;
let bob: TestClient;
let gw: TestGateway | undefined;

const baseEnv = () => ({
  XMPP_SERVICE: server.componentService,
  XMPP_DOMAIN: DOMAIN,
  XMPP_SECRET: "reg-secret",
  XMPP_RECONNECT_MIN_MS: "100",
  REDIS_URL: redis.url,
  PUBLIC_URL: PUBLIC,
  TWILIO_ACCOUNT_SID: MAIN_SID,
  TWILIO_AUTH_TOKEN: MAIN_TOKEN,
  TWILIO_API_URL: twilio.url,
  OUTBOUND_RETRY_BASE_MS: "50",
});

async function useGateway(env: Record<string, string>): Promise<TestGateway> {
  await gw?.stop();
  gw = await startGateway({ ...baseEnv(), ...env });
  await gw.waitOnline(15_000);
  return gw;
}

before(async () => {
  [redis, server, twilio] = await Promise.all([
    startRedis(),
    startXmppServer({
      componentDomain: DOMAIN,
      componentSecret: "reg-secret",
      users: [
        { username: "alice", password: "alice-pw" },
        { username: "bob", password: "bob-pw" },
      ],
    }),
    startFakeTwilio({ accounts: { [MAIN_SID]: MAIN_TOKEN, [ALICE_SID]: ALICE_TOKEN, [BOB_SID]: BOB_TOKEN } }),
  ]);
  [alice, bob] = await Promise.all([connectClient({ server, username: "alice", password: "alice-pw", resource: "phone" }), connectClient({ server, username: "bob", password: "bob-pw" })]);
});

after(async () => {
  await Promise.allSettled([alice?.stop(), bob?.stop()]);
  await gw?.stop();
  await Promise.allSettled([twilio?.stop(), server?.stop(), redis?.stop()]);
});

// ---- helpers

const iqTo = (type: "get" | "set", ...children: StanzaElement[]) => xml("iq", { type, to: DOMAIN }, ...children);

function submit(values: Record<string, string>, formType?: string): StanzaElement {
  return xml(
    "x",
    { xmlns: NS_DATA, type: "submit" },
    formType ? xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, formType)) : undefined,
    ...Object.entries(values).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))),
  );
}

const fieldVars = (x: StanzaElement | undefined) => (x?.getChildren("field") ?? []).map((f) => `${f.attrs.var ?? ""}:${f.attrs.type ?? ""}`);

/** Sends a chat to the gateway's own JID and returns its reply. */
async function chat(client: TestClient, text: string): Promise<string> {
  const from = client.received.length;
  await client.send(xml("message", { to: DOMAIN, type: "chat", id: `c${randomBytes(4).toString("hex")}` }, xml("body", {}, text)));
  const reply = await client.waitFor((el) => client.received.indexOf(el) >= from && el.name === "message" && el.attrs.from === DOMAIN && el.getChild("body") !== undefined);
  return reply.getChildText("body") ?? "";
}

/** Runs an ad-hoc command: execute, then (when a form comes back and values are given) submit. */
async function adhoc(client: TestClient, node: string, values?: Record<string, string>): Promise<{ first: StanzaElement; last: StanzaElement }> {
  const first = await client.iq(iqTo("set", xml("command", { xmlns: NS_COMMANDS, node, action: "execute" })));
  const cmd = first.getChild("command", NS_COMMANDS);
  if (!values || cmd?.attrs.status !== "executing") return { first, last: first };
  const last = await client.iq(iqTo("set", xml("command", { xmlns: NS_COMMANDS, node, sessionid: cmd.attrs.sessionid, action: "complete" }, submit(values))));
  return { first, last };
}

const notes = (iq: StanzaElement) => (iq.getChild("command", NS_COMMANDS)?.getChildren("note") ?? []).map((n) => ({ type: n.attrs.type, text: n.getText() }));

// ---- admin mode (the default)

describe("REGISTRATION=admin", () => {
  before(async () => {
    await useGateway({});
  });

  test("disco#info on the domain advertises registration and commands; commands are listed", async () => {
    const info = await alice.iq(iqTo("get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    const features = info
      .getChild("query")!
      .getChildren("feature")
      .map((f) => f.attrs.var);
    assert.ok(features.includes(NS_REGISTER) && features.includes(NS_COMMANDS), String(features));
    const items = await alice.iq(iqTo("get", xml("query", { xmlns: "http://jabber.org/protocol/disco#items", node: NS_COMMANDS })));
    assert.deepEqual(
      items
        .getChild("query")!
        .getChildren("item")
        .map((i) => i.attrs.node)
        .sort(),
      ["help", "register", "status", "unregister"],
    );
    assert.equal(items.getChild("query")!.getChildren("item")[0]!.attrs.jid, DOMAIN);
  });

  test("XEP-0077: get shows the link; set is refused; remove unregisters", async () => {
    const get1 = await alice.iq(iqTo("get", xml("query", { xmlns: NS_REGISTER })));
    const q1 = get1.getChild("query", NS_REGISTER)!;
    assert.equal(q1.getChild("registered"), undefined);
    assert.match(q1.getChildText("instructions") ?? "", /operator/);
    const form = q1.getChild("x", NS_DATA)!;
    assert.equal(form.attrs.type, "form");
    assert.deepEqual(fieldVars(form), ["FORM_TYPE:hidden"]);
    assert.equal(form.getChildren("field")[0]!.getChildText("value"), NS_REGISTER);

    assert.equal((await gw!.admin("PUT", `/api/v1/users/${alice.bareJid}`, { phone: ALICE_NUMBER })).status, 201);
    const q2 = (await alice.iq(iqTo("get", xml("query", { xmlns: NS_REGISTER })))).getChild("query", NS_REGISTER)!;
    assert.ok(q2.getChild("registered"));
    assert.match(q2.getChildText("instructions") ?? "", new RegExp(`\\${ALICE_NUMBER}`));

    const set = await alice.iq(iqTo("set", xml("query", { xmlns: NS_REGISTER }, submit({}, NS_REGISTER))));
    assert.equal(set.attrs.type, "error");
    assert.equal(errorCondition(set), "not-allowed");
    assert.match(errorText(set), /operator/);

    const removed = await alice.iq(iqTo("set", xml("query", { xmlns: NS_REGISTER }, xml("remove"))));
    assert.equal(removed.attrs.type, "result");
    assert.equal((await gw!.admin("GET", `/api/v1/users/${alice.bareJid}`)).status, 404);
    const again = await alice.iq(iqTo("set", xml("query", { xmlns: NS_REGISTER }, xml("remove"))));
    assert.equal(errorCondition(again), "registration-required");
  });

  test("ad-hoc: status shows the link, register is refused with a note", async () => {
    await gw!.admin("PUT", `/api/v1/users/${alice.bareJid}`, { phone: ALICE_NUMBER });
    const { last } = await adhoc(alice, "status");
    assert.equal(last.getChild("command", NS_COMMANDS)?.attrs.status, "completed");
    assert.match(notes(last)[0]!.text, new RegExp(`\\${ALICE_NUMBER}`));
    const reg = (await adhoc(alice, "register")).last;
    assert.equal(reg.getChild("command", NS_COMMANDS)?.attrs.status, "completed");
    assert.equal(notes(reg)[0]!.type, "error");
    assert.match(notes(reg)[0]!.text, /operator/);
    const info = (await alice.iq(iqTo("get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info", node: "unregister" })))).getChild("query")!;
    assert.equal(info.getChild("identity")?.attrs.type, "command-node");
    const form = (await adhoc(alice, "unregister")).first.getChild("command", NS_COMMANDS)!;
    assert.equal(form.attrs.status, "executing");
    const cancel = await alice.iq(iqTo("set", xml("command", { xmlns: NS_COMMANDS, node: "unregister", sessionid: form.attrs.sessionid, action: "cancel" })));
    assert.equal(cancel.getChild("command", NS_COMMANDS)?.attrs.status, "canceled");
    assert.equal((await gw!.admin("GET", `/api/v1/users/${alice.bareJid}`)).status, 200, "cancel changed nothing");
  });

  test("chat commands: help, status, register, unregister", async () => {
    const help = await chat(alice, "help");
    for (const c of ["help", "status", "register", "unregister"]) assert.match(help, new RegExp(`• ${c} —`));
    assert.match(await chat(alice, "Status"), new RegExp(`sends and receives texts as \\${ALICE_NUMBER}`));
    assert.match(await chat(alice, "register"), /operator links accounts/);
    assert.match(await chat(alice, "unregister"), new RegExp(`no longer sends or receives texts as \\${ALICE_NUMBER}`));
    assert.match(await chat(alice, "status"), /not linked to a phone number.*operator/);
    assert.match(await chat(alice, "hello?"), /This is an SMS gateway/);
  });
});

// ---- byo mode: users bring their own Twilio account

describe("REGISTRATION=byo", () => {
  before(async () => {
    twilio.addNumber(ALICE_SID, ALICE_NUMBER);
    twilio.addNumber(BOB_SID, BOB_NUMBER, { messagingServiceSid: MG });
    await useGateway({ REGISTRATION: "byo", SECRETS_KEY: randomBytes(32).toString("base64") });
  });

  test("XEP-0077 get offers the form: Account SID, Auth Token (private), number", async () => {
    const q = (await alice.iq(iqTo("get", xml("query", { xmlns: NS_REGISTER })))).getChild("query", NS_REGISTER)!;
    assert.equal(q.getChild("registered"), undefined);
    assert.deepEqual(fieldVars(q.getChild("x", NS_DATA)), ["FORM_TYPE:hidden", "account_sid:text-single", "auth_token:text-private", "phone:text-single"]);
  });

  test("a wrong token or a number not on the account is refused with a clear error", async () => {
    const wrong = (await adhoc(alice, "register", { account_sid: ALICE_SID, auth_token: "nope", phone: ALICE_NUMBER })).last;
    assert.deepEqual(
      notes(wrong).map((n) => n.type),
      ["error"],
    );
    assert.match(notes(wrong)[0]!.text, /did not accept this Account SID and Auth Token/);

    const notMine = await alice.iq(iqTo("set", xml("query", { xmlns: NS_REGISTER }, submit({ account_sid: ALICE_SID, auth_token: ALICE_TOKEN, phone: BOB_NUMBER }, NS_REGISTER))));
    assert.equal(errorCondition(notMine), "item-not-found");
    assert.match(errorText(notMine), new RegExp(`\\${BOB_NUMBER} is not a number of the Twilio account ${ALICE_SID}`));
    assert.equal(twilio.numbers(BOB_SID)[0]!.sms_url, "https://demo.twilio.com/welcome/sms/reply", "nothing changed at Twilio");
    assert.equal((await gw!.admin("GET", `/api/v1/users/${alice.bareJid}`)).status, 404);
  });

  test("XEP-0077 set registers: the number's smsUrl points here, the user is told", async () => {
    const from = alice.received.length;
    const res = await alice.iq(iqTo("set", xml("query", { xmlns: NS_REGISTER }, submit({ account_sid: ALICE_SID, auth_token: ALICE_TOKEN, phone: "(555) 000-2222" }, NS_REGISTER))));
    assert.equal(res.attrs.type, "result", res.toString());
    const n = twilio.numbers(ALICE_SID)[0]!;
    assert.equal(n.sms_url, `${PUBLIC}/twilio/sms`);
    assert.equal(n.sms_method, "POST");
    const told = await alice.waitFor((el) => alice.received.indexOf(el) >= from && el.attrs.from === DOMAIN && /Registered/.test(el.getChildText("body") ?? ""));
    assert.match(told.getChildText("body")!, new RegExp(`\\${ALICE_NUMBER}`));
    assert.deepEqual((await gw!.admin("GET", `/api/v1/users/${alice.bareJid}`)).json, { jid: alice.bareJid, phone: ALICE_NUMBER });
    // The token is stored sealed, never in clear.
    const sealed = await gw!.gateway.redis.hGet(keys.account(ALICE_SID), "authToken");
    assert.ok(sealed && !sealed.includes(ALICE_TOKEN));
    assert.ok((await alice.iq(iqTo("get", xml("query", { xmlns: NS_REGISTER })))).getChild("query", NS_REGISTER)!.getChild("registered"));
  });

  test("ad-hoc register: form, then completed with a warning for a Messaging Service", async () => {
    const { first, last } = await adhoc(bob, "register", { account_sid: BOB_SID, auth_token: BOB_TOKEN, phone: BOB_NUMBER });
    const cmd = first.getChild("command", NS_COMMANDS)!;
    assert.equal(cmd.attrs.status, "executing");
    assert.ok(cmd.attrs.sessionid);
    assert.ok(cmd.getChild("actions")?.getChild("complete"));
    assert.ok(fieldVars(cmd.getChild("x", NS_DATA)).includes("auth_token:text-private"));
    assert.equal(last.getChild("command", NS_COMMANDS)?.attrs.status, "completed");
    assert.deepEqual(
      notes(last).map((n) => n.type),
      ["info", "warn"],
    );
    assert.match(notes(last)[1]!.text, new RegExp(`Messaging Service ${MG}`));
    assert.equal(twilio.numbers(BOB_SID)[0]!.sms_url, `${PUBLIC}/twilio/sms`);
  });

  test("a registered user's texts go out with their own account; their webhooks are checked with their token", async () => {
    const before = twilio.requests.length;
    await alice.send(xml("message", { to: `+15552223333@${DOMAIN}`, type: "chat", id: "own-1" }, xml("body", {}, "from my own account")));
    const req = (await twilio.waitForRequests(before + 1, 5000)).slice(before).find((r) => r.method === "POST")!;
    assert.equal(req.path, `/2010-04-01/Accounts/${ALICE_SID}/Messages.json`);
    assert.equal(req.headers.authorization, `Basic ${Buffer.from(`${ALICE_SID}:${ALICE_TOKEN}`).toString("base64")}`);
    assert.equal(req.form.From, ALICE_NUMBER);

    const post = (token: string, to: string, body: string) => {
      const params = inboundSmsParams({ from: "+15552223333", to, body, accountSid: ALICE_SID });
      return postSigned(gw!.gateway.http, { authToken: token, publicUrl: PUBLIC }, "/twilio/sms", params);
    };
    assert.equal((await post(ALICE_TOKEN, ALICE_NUMBER, "reply via own account")).statusCode, 200);
    const got = await alice.waitFor((el) => el.name === "message" && el.getChildText("body") === "reply via own account");
    assert.equal(got.attrs.from, `+15552223333@${DOMAIN}`);
    assert.equal((await post(MAIN_TOKEN, ALICE_NUMBER, "signed by the wrong account")).statusCode, 403);
    // Her token cannot speak for a number registered under another account.
    assert.equal((await post(ALICE_TOKEN, BOB_NUMBER, "forged for bob")).statusCode, 403);
    await bob.expectNone((el) => el.getChildText("body") === "forged for bob", 300);
  });

  test("chat: register explains forms and never asks for the token; unregister deletes the credentials", async () => {
    const text = await chat(alice, "register");
    assert.match(text, /client that shows forms/);
    assert.match(text, /Never send your Auth Token in a chat/);
    assert.match(await chat(alice, "status"), new RegExp(`as \\${ALICE_NUMBER} with your own Twilio account ${ALICE_SID}`));

    const kept = (await adhoc(alice, "unregister", { confirm: "0" })).last;
    assert.equal(notes(kept)[0]!.text, "Nothing changed.");
    assert.match(await chat(alice, "unregister"), /Twilio credentials were deleted/);
    const r = gw!.gateway.redis;
    assert.equal(await r.exists([keys.userAccount(alice.bareJid), keys.account(ALICE_SID), keys.accountNumbers(ALICE_SID), keys.userNumbers(alice.bareJid)]), 0);
    assert.equal(await r.hGet(keys.account(BOB_SID), "authToken").then(Boolean), true, "bob's account is untouched");
    const refused = await alice.iq(iqTo("set", xml("query", { xmlns: NS_REGISTER }, xml("remove"))));
    assert.equal(errorCondition(refused), "registration-required");
  });
});
