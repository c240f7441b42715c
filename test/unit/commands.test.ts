// The command definitions, the registration rules behind them, form parsing, and the per-account
// provider routing — without XMPP, Redis or Twilio (the in-memory adapters of src/adapters/memory/).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import xml from "@xmpp/xml";
import { createMemoryAccountStore } from "../../src/adapters/memory/account-store.js";
import { createMemoryLinkStore } from "../../src/adapters/memory/link-store.js";
import { createAccountProviders } from "../../src/adapters/twilio/account-providers.js";
import { createCommands, runChatCommand, type Command } from "../../src/core/flows/commands.js";
import { ProviderError, type AccountCredentials, type ProviderAccounts, type ProviderNumber, type SmsProvider } from "../../src/core/ports.js";
import { routeByAccount } from "../../src/core/policy/provider-router.js";
import { createRegistration, type RegistrationMode } from "../../src/core/flows/registration.js";
import { GatewayError } from "../../src/errors.js";
import { readForm, renderForm } from "../../src/xmpp/forms.js";

const SID = `AC${"a".repeat(32)}`;
const JID = "alice@example.com";

/** A provider API that knows one account with the given numbers and records what it was asked. */
function fakeProviderAccounts(numbers: ProviderNumber[], token = "right"): ProviderAccounts & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async findNumber(c: AccountCredentials, phone: string) {
      calls.push(`find ${phone}`);
      if (c.accountSid !== SID || c.authToken !== token) throw new GatewayError("unauthorized", "Twilio did not accept this Account SID and Auth Token");
      return numbers.find((n) => n.phone === phone);
    },
    async setSmsUrl(_c, sid, url) {
      calls.push(`set ${sid} ${url}`);
    },
  };
}

function setup(mode: RegistrationMode, opts: { canStore?: boolean; numbers?: ProviderNumber[] } = {}) {
  const links = createMemoryLinkStore();
  const accounts = createMemoryAccountStore({ canStore: opts.canStore ?? true });
  const api = fakeProviderAccounts(opts.numbers ?? [{ sid: "PN1", phone: "+15550001111", smsUrl: "" }]);
  const registration = createRegistration({ mode, links, accounts, providerAccounts: api, smsUrl: "https://gw.example/twilio/sms", defaultRegion: "US", log: { info() {} } });
  const commands = createCommands({ domain: "sms.example.com", registration });
  const cmd = (name: string): Command => commands.find((c) => c.name === name)!;
  return { links, accounts, api, registration, commands, cmd };
}

const ctx = { jid: JID };
const rejectsWith = (p: Promise<unknown>, code: string, re?: RegExp) => assert.rejects(p, (e: unknown) => e instanceof GatewayError && e.code === code && (!re || re.test(e.userText)));

describe("command definitions", () => {
  test("the same four commands in both modes; only byo's register asks for credentials", async () => {
    for (const mode of ["admin", "byo"] as const) {
      const { commands, cmd } = setup(mode);
      assert.deepEqual(
        commands.map((c) => c.name),
        ["register", "unregister", "status", "help"],
      );
      const fields = await cmd("register").fields(ctx);
      if (mode === "admin") assert.deepEqual(fields, []);
      else
        assert.deepEqual(
          fields.map((f) => `${f.var}:${f.type}:${f.required}`),
          ["account_sid:text-single:true", "auth_token:text-private:true", "phone:text-single:true"],
        );
      assert.deepEqual((await cmd("status").fields(ctx)).length, 0);
      assert.equal((await cmd("unregister").fields(ctx))[0]?.type, "boolean");
    }
  });

  test("byo register: a missing field is named; the form is prefilled once registered (never the token)", async () => {
    const { cmd } = setup("byo");
    await rejectsWith(cmd("register").run(ctx, { account_sid: SID, phone: "+15550001111" }), "not_acceptable", /auth_token/);
    await cmd("register").run(ctx, { account_sid: SID, auth_token: "right", phone: "+15550001111" });
    const f = await cmd("register").fields(ctx);
    assert.deepEqual(
      f.map((x) => x.value),
      [SID, undefined, "+15550001111"],
    );
  });

  test("unregister: an unchecked confirmation changes nothing; not registered → registration_required", async () => {
    const { cmd, links } = setup("admin");
    await links.link(JID, "+15550001111");
    assert.deepEqual(await cmd("unregister").run(ctx, { confirm: "0" }), [{ type: "info", text: "Nothing changed." }]);
    assert.equal(await links.phoneOf(JID), "+15550001111");
    await cmd("unregister").run(ctx, { confirm: "1" });
    assert.equal(await links.phoneOf(JID), undefined);
    await rejectsWith(cmd("unregister").run(ctx, {}), "registration_required");
  });

  test("chat: commands by first word, help otherwise; register in byo never takes a secret", async () => {
    const { commands, links } = setup("byo");
    const run = (t: string) => runChatCommand(commands, ctx, t, "sms.example.com");
    assert.match(await run("whatever"), /^This is an SMS gateway[\s\S]*• unregister —/);
    assert.match(await run("  STATUS please"), /not linked to a phone number/);
    const reg = await run("register");
    assert.match(reg, /Never send your Auth Token in a chat/);
    assert.doesNotMatch(reg, /not used/);
    assert.match(await run(`register ${SID} secret-token +15550001111`), /was not used\. If it contained your Auth Token, change the token/);
    assert.equal(await links.phoneOf(JID), undefined, "nothing registered from chat");
    assert.match(await run("unregister"), /not registered/);
  });
});

describe("registration (byo)", () => {
  test("input is checked before any provider call", async () => {
    const { registration, api } = setup("byo");
    await rejectsWith(registration.register(JID, { accountSid: "ACnope", authToken: "t", phone: "+15550001111" }), "not_acceptable", /Account SID/);
    await rejectsWith(registration.register(JID, { accountSid: SID, authToken: "has space", phone: "+15550001111" }), "not_acceptable", /Auth Token/);
    await rejectsWith(registration.register(JID, { accountSid: SID, authToken: "t", phone: "call me" }), "not_acceptable", /not a phone number/);
    assert.deepEqual(api.calls, []);
  });

  test("without SECRETS_KEY: a clear refusal, and Twilio is not touched", async () => {
    const { registration, api } = setup("byo", { canStore: false });
    await rejectsWith(registration.register(JID, { accountSid: SID, authToken: "right", phone: "+15550001111" }), "unavailable", /SECRETS_KEY/);
    assert.deepEqual(api.calls, []);
  });

  test("admin mode refuses, naming the operator", async () => {
    const { registration } = setup("admin");
    await rejectsWith(registration.register(JID, { accountSid: SID, authToken: "right", phone: "+15550001111" }), "not_allowed", /operator/);
  });

  test("conflict, unknown number, then success with a Messaging Service warning", async () => {
    const { registration, links, accounts, api } = setup("byo", { numbers: [{ sid: "PN1", phone: "+15550001111", smsUrl: "", messagingServiceSid: "MG1" }] });
    await links.link("bob@example.com", "+15550001111");
    await rejectsWith(registration.register(JID, { accountSid: SID, authToken: "right", phone: "+15550001111" }), "conflict");
    await links.unlink("bob@example.com");
    await rejectsWith(registration.register(JID, { accountSid: SID, authToken: "right", phone: "+15550009999" }), "not_found", /is not a number of the Twilio account/);
    const res = await registration.register(JID, { accountSid: SID, authToken: "right", phone: "555-000-1111" });
    assert.equal(res.phone, "+15550001111");
    assert.deepEqual(
      res.notes.map((n) => n.type),
      ["info", "warn"],
    );
    assert.ok(api.calls.includes("set PN1 https://gw.example/twilio/sms"));
    assert.equal(accounts.tokens.get(SID), "right");
    assert.deepEqual(await registration.status(JID), { phone: "+15550001111", accountSid: SID });
    const gone = await registration.unregister(JID);
    assert.deepEqual(gone, { removed: true, hadCredentials: true, phone: "+15550001111" });
    assert.equal(accounts.tokens.size, 0);
  });
});

describe("XEP-0004 forms", () => {
  test("render and read back; FORM_TYPE kept apart; cancel and foreign elements are no form", () => {
    const x = renderForm({
      type: "form",
      title: "T",
      instructions: "I",
      formType: "jabber:iq:register",
      fields: [
        { var: "a", type: "text-single", label: "A", required: true, value: "1" },
        { type: "fixed", value: "note" },
      ],
    });
    assert.equal(x.attrs.type, "form");
    assert.ok(x.getChildren("field")[1]!.getChild("required"));
    assert.equal(x.getChildren("field")[2]!.attrs.var, undefined);
    assert.deepEqual(readForm(x), { formType: "jabber:iq:register", values: { a: "1" } });
    assert.equal(readForm(xml("x", { xmlns: "jabber:x:data", type: "cancel" })), undefined);
    assert.equal(readForm(xml("x", { xmlns: "jabber:x:oob" })), undefined);
    const submitted = xml("x", { xmlns: "jabber:x:data", type: "submit" }, xml("field", { var: "phone" }, xml("value", {}, "+1555")), xml("field", { var: "empty" }));
    assert.deepEqual(readForm(submitted), { values: { phone: "+1555", empty: "" } });
  });
});

describe("per-account providers", () => {
  const stubProvider = (label: string, sent: string[]): SmsProvider & { close(): Promise<void> } => ({
    name: "twilio",
    async send(req) {
      sent.push(`${label}:${req.id}`);
      return { providerId: `SM-${label}`, status: "queued" };
    },
    async lookup() {
      return { notFound: true };
    },
    async close() {},
  });
  const req = (account?: string) => ({ id: "m1", from: "+15550001111", to: "+15552223333", body: "hi", mediaUrls: [], ...(account ? { account } : {}) });

  test("a job with an account goes out with that account; without one with the gateway's; a removed account fails permanently", async () => {
    const sent: string[] = [];
    const store = createMemoryAccountStore();
    await store.put(JID, "+15550001111", { accountSid: SID, authToken: "t1" });
    let made = 0;
    const accounts = createAccountProviders({ store, make: (sid) => (made++, stubProvider(sid, sent)) });
    const router = routeByAccount(stubProvider("main", sent), accounts);
    await router.send(req());
    await router.send(req(SID));
    await router.send(req(SID));
    assert.deepEqual(sent, ["main:m1", `${SID}:m1`, `${SID}:m1`]);
    assert.equal(made, 1, "one provider per account while its token is unchanged");
    store.tokens.set(SID, "t2");
    await router.send(req(SID));
    assert.equal(made, 2, "a new token, a new provider");
    await store.remove(JID);
    await assert.rejects(router.send(req(SID)), (e: unknown) => e instanceof ProviderError && e.failure.kind === "permanent");
    assert.deepEqual(await router.lookup({ ...req(SID), since: 0, isClaimed: async () => false }), { unknown: "the account's credentials are no longer stored" });
  });

  test("while the store is unreachable the last known credentials serve", async () => {
    const store = createMemoryAccountStore();
    await store.put(JID, "+15550001111", { accountSid: SID, authToken: "t1" });
    let down = false;
    const flaky = { credentials: (sid: string) => (down ? Promise.reject(new Error("redis down")) : store.credentials(sid)) };
    const accounts = createAccountProviders({ store: flaky, make: (sid) => stubProvider(sid, []) });
    const first = await accounts.get(SID);
    down = true;
    assert.equal((await accounts.get(SID))?.provider, first?.provider);
    await assert.rejects(accounts.get(`AC${"f".repeat(32)}`), /redis down/);
  });
});
