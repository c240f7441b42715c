// The interop matrix: the core scenarios (send, receive, receipt, error, disco, register, chat
// commands) on every XMPP server (Prosody, ejabberd) × every client stack (@xmpp/client, slixmpp).
// Each scenario is written once against a small client driver, so both stacks are held to the same
// assertions. The run prints a scenario × server × client table at the end and fails on any gap:
// a failing cell, and a cell that never ran (e.g. its server did not start).
//
// Both servers always run here, whatever XMPP_SERVER says: ejabberd needs root (see
// test/support/xmpp-server.ts), slixmpp needs Debian's python3-slixmpp.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";

import { inboundSmsParams, startFakeTwilio, statusCallbackParams, type FakeTwilio } from "../fakes/fake-twilio.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { connectSlix, type SlixClient, type SlixMessage } from "../support/slix.js";
import { errorCondition, errorText, errorType } from "../support/stanzas.js";
import { postSigned } from "../support/twilio-webhooks.js";
import { until } from "../support/wait.js";
import { connectClient, xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer, type XmppServerKind } from "../support/xmpp-server.js";

const SERVERS: readonly XmppServerKind[] = ["prosody", "ejabberd"];
const CLIENTS = ["xmpp.js", "slixmpp"] as const;
type ClientKind = (typeof CLIENTS)[number];
const SCENARIOS = ["send", "receive", "receipt", "error", "disco", "register", "chat commands"] as const;
type Scenario = (typeof SCENARIOS)[number];

const DOMAIN = "sms.localhost";
const SECRET = "matrix-secret";
const SID = `AC${"7".repeat(32)}`;
const TOKEN = "matrix-token";
const PUBLIC = "https://gw.example.test/matrix";
const NS = {
  discoInfo: "http://jabber.org/protocol/disco#info",
  register: "jabber:iq:register",
  data: "jabber:x:data",
  receipts: "urn:xmpp:receipts",
};
/** One user per client stack, each linked to its own number, so the stacks never see each other's traffic. */
const USERS: Record<ClientKind, { username: string; password: string; phone: string }> = {
  "xmpp.js": { username: "js", password: "js-pw", phone: "+15550001001" },
  slixmpp: { username: "py", password: "py-pw", phone: "+15550001002" },
};
const CONTACT_NUMBER = "+15552223333";
const CONTACT = `${CONTACT_NUMBER}@${DOMAIN}`;
/** how long a scenario waits for a stanza or a request */
const WAIT_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// the client driver: what a scenario may do with a client, implemented by both stacks

interface Msg {
  from: string;
  type: string;
  id: string;
  body: string | null;
}
interface StanzaErr {
  type: string;
  condition: string;
  text: string;
}
interface DiscoInfo {
  ok: boolean;
  error?: StanzaErr;
  identities: { category: string; type: string; name: string }[];
  features: string[];
}
interface RegisterForm {
  ok: boolean;
  error?: StanzaErr;
  instructions: string | null;
  registered: boolean;
  /** the jabber:x:data form, if any: its type and the fields' vars */
  form: { type: string; formType: string | null; fields: { var: string; type: string; required: boolean }[] } | null;
}
interface Driver {
  kind: ClientKind;
  bareJid: string;
  sendChat(to: string, body: string, opts?: { id?: string; receipt?: boolean }): Promise<void>;
  /** the first non-error message with a body from `from` (bare JID), with exactly `body` if given */
  waitMessage(from: string, body?: string, timeoutMs?: number): Promise<Msg>;
  waitReceipt(id: string, timeoutMs?: number): Promise<Msg>;
  waitError(id: string, timeoutMs?: number): Promise<Msg & { error: StanzaErr }>;
  discoInfo(to: string): Promise<DiscoInfo>;
  registerGet(to: string): Promise<RegisterForm>;
  stop(): Promise<void>;
}

const bare = (jid: string | null | undefined) => (jid ?? "").split("/")[0]!;

function stanzaError(el: StanzaElement): StanzaErr {
  return { type: errorType(el) ?? "", condition: errorCondition(el) ?? "", text: errorText(el) };
}

function xmppJsDriver(c: TestClient): Driver {
  const msg = (el: StanzaElement): Msg => ({ from: el.attrs.from ?? "", type: el.attrs.type ?? "normal", id: el.attrs.id ?? "", body: el.getChildText("body") });
  return {
    kind: "xmpp.js",
    bareJid: c.bareJid,
    async sendChat(to, body, opts = {}) {
      await c.send(xml("message", { to, type: "chat", id: opts.id ?? `js-${Date.now()}` }, xml("body", {}, body), opts.receipt ? xml("request", { xmlns: NS.receipts }) : undefined));
    },
    async waitMessage(from, body, timeoutMs = WAIT_MS) {
      const el = await c.waitFor(
        (el) =>
          el.name === "message" && el.attrs.type !== "error" && bare(el.attrs.from) === bare(from) && el.getChildText("body") !== null && (body === undefined || el.getChildText("body") === body),
        timeoutMs,
      );
      return msg(el);
    },
    async waitReceipt(id, timeoutMs = WAIT_MS) {
      return msg(await c.waitFor((el) => el.name === "message" && el.getChild("received", NS.receipts)?.attrs.id === id, timeoutMs));
    },
    async waitError(id, timeoutMs = WAIT_MS) {
      const el = await c.waitFor((el) => el.name === "message" && el.attrs.type === "error" && el.attrs.id === id, timeoutMs);
      return { ...msg(el), error: stanzaError(el) };
    },
    async discoInfo(to) {
      const res = await c.iq(xml("iq", { type: "get", to }, xml("query", { xmlns: NS.discoInfo })), WAIT_MS);
      if (res.attrs.type !== "result") return { ok: false, error: stanzaError(res), identities: [], features: [] };
      const q = res.getChild("query", NS.discoInfo);
      return {
        ok: true,
        identities: (q?.getChildren("identity") ?? []).map((i) => ({ category: i.attrs.category ?? "", type: i.attrs.type ?? "", name: i.attrs.name ?? "" })),
        features: (q?.getChildren("feature") ?? []).map((f) => f.attrs.var ?? ""),
      };
    },
    async registerGet(to) {
      const res = await c.iq(xml("iq", { type: "get", to }, xml("query", { xmlns: NS.register })), WAIT_MS);
      if (res.attrs.type !== "result") return { ok: false, error: stanzaError(res), instructions: null, registered: false, form: null };
      const q = res.getChild("query", NS.register);
      const x = q?.getChild("x", NS.data);
      return {
        ok: q !== undefined,
        instructions: q?.getChildText("instructions") ?? null,
        registered: q?.getChild("registered") !== undefined,
        form:
          x === undefined
            ? null
            : {
                type: x.attrs.type ?? "",
                formType:
                  x
                    .getChildren("field")
                    .find((f) => f.attrs.var === "FORM_TYPE")
                    ?.getChildText("value") ?? null,
                fields: x.getChildren("field").map((f) => ({ var: f.attrs.var ?? "", type: f.attrs.type ?? "", required: f.getChild("required") !== undefined })),
              },
      };
    },
    stop: () => c.stop(),
  };
}

function slixDriver(s: SlixClient): Driver {
  const msg = (m: SlixMessage): Msg => ({ from: m.from ?? "", type: m.type, id: m.id ?? "", body: m.body });
  const errOf = (e: unknown): StanzaErr | undefined =>
    e && typeof e === "object" ? { type: String((e as StanzaErr).type ?? ""), condition: String((e as StanzaErr).condition ?? ""), text: String((e as StanzaErr).text ?? "") } : undefined;
  return {
    kind: "slixmpp",
    bareJid: s.bareJid,
    async sendChat(to, body, opts = {}) {
      await s.must({ op: "send_chat", to, body, ...(opts.id ? { id: opts.id } : {}), receipt: opts.receipt ?? false });
    },
    async waitMessage(from, body, timeoutMs = WAIT_MS) {
      return msg((await s.must({ op: "wait_message", from, ...(body === undefined ? {} : { body }), timeout: timeoutMs / 1000 })).message!);
    },
    async waitReceipt(id, timeoutMs = WAIT_MS) {
      return msg((await s.must({ op: "wait_receipt", id, timeout: timeoutMs / 1000 })).message!);
    },
    async waitError(id, timeoutMs = WAIT_MS) {
      const m = (await s.must({ op: "wait_error", id, timeout: timeoutMs / 1000 })).message!;
      return { ...msg(m), error: errOf(m.error) ?? { type: "", condition: "", text: "" } };
    },
    async discoInfo(to) {
      const r = await s.run({ op: "disco_info", to, timeout: WAIT_MS / 1000 });
      if (!r.ok) {
        const error = errOf(r.error);
        if (!error) throw new Error(`slixmpp disco_info: ${String(r.error)}`);
        return { ok: false, error, identities: [], features: [] };
      }
      return { ok: true, identities: (r.identities ?? []).map((i) => ({ category: i.category, type: i.type, name: i.name ?? "" })), features: r.features ?? [] };
    },
    async registerGet(to) {
      const r = await s.run({ op: "register_get", to, timeout: WAIT_MS / 1000 });
      if (!r.ok) {
        const error = errOf(r.error);
        if (!error) throw new Error(`slixmpp register_get: ${String(r.error)}`);
        return { ok: false, error, instructions: null, registered: false, form: null };
      }
      return {
        ok: true,
        instructions: r.instructions ?? null,
        registered: r.registered ?? false,
        form: r.form
          ? {
              type: r.form.type ?? "",
              formType: r.form.fields.find((f) => f.var === "FORM_TYPE")?.value ?? null,
              fields: r.form.fields.map((f) => ({ var: f.var ?? "", type: f.type ?? "", required: f.required })),
            }
          : null,
      };
    },
    stop: () => s.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// one stack per server: Redis, the server, a fake Twilio, the gateway, one client of each kind

interface Stack {
  server: XmppServer;
  redis: RedisServer;
  twilio: FakeTwilio;
  gw: TestGateway;
  clients: Partial<Record<ClientKind, Driver>>;
}

async function startStack(kind: XmppServerKind): Promise<Stack> {
  const [redis, server, twilio] = await Promise.all([
    startRedis(),
    startXmppServer({ kind, componentDomain: DOMAIN, componentSecret: SECRET, users: Object.values(USERS).map(({ username, password }) => ({ username, password })) }),
    startFakeTwilio({ accounts: { [SID]: TOKEN } }),
  ]);
  const gw = await startGateway({
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: SECRET,
    REDIS_URL: redis.url,
    PUBLIC_URL: PUBLIC,
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: TOKEN,
    TWILIO_API_URL: twilio.url,
    OUTBOUND_RETRY_BASE_MS: "50",
  });
  const stack: Stack = { server, redis, twilio, gw, clients: {} };
  await gw.waitOnline();
  for (const u of Object.values(USERS)) {
    const res = await gw.admin("PUT", `/api/v1/users/${u.username}@${server.domain}`, { phone: u.phone });
    assert.ok(res.status < 300, `link ${u.username}: ${res.status} ${JSON.stringify(res.json)}`);
  }
  return stack;
}

async function stopStack(s: Stack | undefined): Promise<void> {
  if (!s) return;
  await Promise.allSettled(Object.values(s.clients).map((c) => c.stop()));
  await s.gw.stop().catch(() => undefined);
  await Promise.allSettled([s.twilio.stop(), s.server.stop(), s.redis.stop()]);
}

async function connectDriver(kind: ClientKind, server: XmppServer): Promise<Driver> {
  const { username, password } = USERS[kind];
  // generous bounds: this proves interop, not speed (xmpp.js's SCRAM is slow on a busy machine)
  return kind === "xmpp.js" ? xmppJsDriver(await connectClient({ server, username, password, timeoutMs: 30_000 })) : slixDriver(await connectSlix({ server, username, password, timeoutMs: 30_000 }));
}

// ---------------------------------------------------------------------------------------------
// the scenarios, written once

let seq = 0;
const uniq = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++seq}`;

async function signedPost(s: Stack, path: string, params: Record<string, string>): Promise<number> {
  return (await postSigned(s.gw.gateway.http, { authToken: TOKEN, publicUrl: PUBLIC }, path, params)).statusCode;
}

/** The create request the fake Twilio received with this body. */
function createFor(s: Stack, body: string, timeoutMs = WAIT_MS) {
  return until(() => s.twilio.requests.find((r) => r.method === "POST" && r.form.Body === body), {
    what: () => `a create with Body ${JSON.stringify(body)} at the fake Twilio (${s.twilio.requests.length} requests)`,
    timeoutMs,
    intervalMs: 20,
  });
}

/** "help", "status", "register", "unregister" as words (commands a chat to the gateway understands, issue 5 §1c). */
const COMMAND_WORDS = ["help", "status", "register", "unregister"];

const SCENARIO_RUN: Record<Scenario, (s: Stack, c: Driver) => Promise<void>> = {
  async send(s, c) {
    const body = uniq(`send ${s.server.kind} ${c.kind}`);
    await c.sendChat(CONTACT, body);
    const req = await createFor(s, body);
    assert.equal(req.path, `/2010-04-01/Accounts/${SID}/Messages.json`);
    assert.equal(req.form.From, USERS[c.kind].phone, "sent from the user's linked number");
    assert.equal(req.form.To, CONTACT_NUMBER);
    assert.equal(req.form.Body, body);
  },

  async receive(s, c) {
    const body = uniq(`receive ${s.server.kind} ${c.kind}`);
    const params = inboundSmsParams({ from: CONTACT_NUMBER, to: USERS[c.kind].phone, body, accountSid: SID });
    assert.equal(await signedPost(s, "/twilio/sms", params), 200);
    const m = await c.waitMessage(CONTACT, body);
    assert.equal(m.from, CONTACT);
    assert.equal(m.type, "chat");
    assert.equal(m.id, params.MessageSid);
  },

  async receipt(s, c) {
    const body = uniq(`receipt ${s.server.kind} ${c.kind}`);
    const id = uniq("rcpt");
    await c.sendChat(CONTACT, body, { id, receipt: true });
    const req = await createFor(s, body);
    const cb = new URL(String(req.form.StatusCallback));
    const sid = await until(() => s.twilio.created.find((m) => m.body === body)?.sid, { what: "a message resource created", timeoutMs: 3000, intervalMs: 20 });
    const status = await signedPost(
      s,
      cb.pathname.replace(/^\/matrix/, "") + cb.search,
      statusCallbackParams({ sid, status: "delivered", from: USERS[c.kind].phone, to: CONTACT_NUMBER, accountSid: SID }),
    );
    assert.equal(status, 200);
    const r = await c.waitReceipt(id);
    assert.equal(bare(r.from), CONTACT, "the receipt comes from the contact");
  },

  async error(s, c) {
    const id = uniq("err");
    s.twilio.failNext(1, { status: 400, code: 21211, message: "The 'To' number +15552223333 is not a valid phone number." });
    await c.sendChat(CONTACT, uniq(`error ${s.server.kind} ${c.kind}`), { id });
    const e = await c.waitError(id);
    assert.equal(bare(e.from), CONTACT);
    assert.equal(e.error.condition, "jid-malformed");
    assert.equal(e.error.type, "modify");
    assert.match(e.error.text, /21211/, "the text carries Twilio's code");
  },

  async disco(_s, c) {
    const info = await c.discoInfo(DOMAIN);
    assert.ok(info.ok, `disco#info answered with an error: ${JSON.stringify(info.error)}`);
    assert.ok(
      info.identities.some((i) => i.category === "gateway" && i.type === "sms"),
      `gateway/sms identity: ${JSON.stringify(info.identities)}`,
    );
    for (const f of [NS.discoInfo, "jabber:iq:gateway", NS.receipts, "urn:xmpp:ping"]) assert.ok(info.features.includes(f), `feature ${f}: ${JSON.stringify(info.features)}`);
  },

  async register(_s, c) {
    // XEP-0077 §3.1: a get on the gateway answers a result whose query holds a jabber:x:data form
    // (FORM_TYPE jabber:iq:register) or instructions; the gateway advertises jabber:iq:register.
    const reg = await c.registerGet(DOMAIN);
    assert.ok(reg.ok, `XEP-0077 get on ${DOMAIN} answered ${reg.error ? `${reg.error.type}/${reg.error.condition}${reg.error.text ? ` (${reg.error.text})` : ""}` : "no query"}`);
    const hasForm = reg.form !== null && reg.form.type === "form" && reg.form.fields.length > 0;
    const hasInstructions = (reg.instructions ?? "").trim().length > 0;
    assert.ok(hasForm || hasInstructions, `a form or instructions: ${JSON.stringify(reg)}`);
    if (reg.form) assert.equal(reg.form.formType, NS.register, "the form's FORM_TYPE");
    const info = await c.discoInfo(DOMAIN);
    assert.ok(info.features.includes(NS.register), `disco#info advertises ${NS.register}: ${JSON.stringify(info.features)}`);
  },

  async "chat commands"(_s, c) {
    // A message "help" to the gateway's own JID: a chat reply from it that lists the commands.
    await c.sendChat(DOMAIN, "help");
    const reply = await c.waitMessage(DOMAIN);
    assert.equal(bare(reply.from), DOMAIN);
    assert.equal(reply.type, "chat");
    const missing = COMMAND_WORDS.filter((w) => !new RegExp(`\\b${w}\\b`, "i").test(reply.body ?? ""));
    assert.deepEqual(missing, [], `the help text names every command; it was: ${JSON.stringify(reply.body)}`);
  },
};

// ---------------------------------------------------------------------------------------------
// the matrix

type Cell = { state: "pass" } | { state: "fail"; why: string };
const results = new Map<string, Cell>();
const cellKey = (scenario: Scenario, server: XmppServerKind, client: ClientKind) => `${scenario}|${server}|${client}`;

function table(): string {
  const cols = SERVERS.flatMap((s) => CLIENTS.map((c) => ({ s, c, label: `${s} · ${c}` })));
  const first = Math.max(...SCENARIOS.map((s) => s.length), "scenario".length);
  const widths = cols.map((c) => Math.max(c.label.length, "not run".length));
  const row = (cells: string[]) =>
    cells
      .map((t, i) => t.padEnd(i === 0 ? first : widths[i - 1]!))
      .join("  ")
      .trimEnd();
  const lines = [row(["scenario", ...cols.map((c) => c.label)]), row(["-".repeat(first), ...widths.map((w) => "-".repeat(w))])];
  for (const sc of SCENARIOS) {
    lines.push(
      row([
        sc,
        ...cols.map(({ s, c }) => {
          const r = results.get(cellKey(sc, s, c));
          return r === undefined ? "not run" : r.state === "pass" ? "ok" : "FAIL";
        }),
      ]),
    );
  }
  const failures = [...results].filter(([, r]) => r.state === "fail") as [string, { state: "fail"; why: string }][];
  if (failures.length > 0) {
    lines.push("", "failures:");
    for (const [k, r] of failures) lines.push(`  ${k.split("|").join(" · ")}: ${r.why.split("\n")[0]!.slice(0, 300)}`);
  }
  return lines.join("\n");
}

const stacks = new Map<XmppServerKind, Promise<Stack>>();

before(() => {
  // Both stacks start at once; each server's block waits for its own.
  for (const kind of SERVERS) {
    const p = startStack(kind);
    p.catch(() => undefined); // reported by the block that awaits it
    stacks.set(kind, p);
  }
});

after(async () => {
  await Promise.allSettled([...stacks.values()].map((p) => p.then(stopStack, () => undefined)));
});

for (const server of SERVERS) {
  describe(`interop on ${server}`, () => {
    let stack: Stack | undefined;
    before(async () => {
      stack = await stacks.get(server)!;
      // both client stacks logged in before any scenario runs
      await Promise.all(
        CLIENTS.map(async (kind) => {
          stack!.clients[kind] = await connectDriver(kind, stack!.server);
        }),
      );
    });

    for (const client of CLIENTS) {
      for (const scenario of SCENARIOS) {
        test(`${scenario} · ${server} · ${client}`, async () => {
          try {
            const c = stack?.clients[client];
            assert.ok(stack && c, `the ${server} stack or the ${client} client is not up`);
            await SCENARIO_RUN[scenario](stack, c);
            results.set(cellKey(scenario, server, client), { state: "pass" });
          } catch (err) {
            results.set(cellKey(scenario, server, client), { state: "fail", why: err instanceof Error ? err.message : String(err) });
            throw err;
          }
        });
      }
    }
  });
}

test("the matrix has no gaps (scenario × server × client)", () => {
  const out = `\nInterop matrix (scenario × server × client)\n${table()}\n`;
  process.stdout.write(out);
  // scripts/run-tests.mjs prints it again after the whole run
  if (process.env.INTEROP_MATRIX_FILE) writeFileSync(process.env.INTEROP_MATRIX_FILE, out);
  const gaps = SCENARIOS.flatMap((sc) => SERVERS.flatMap((s) => CLIENTS.filter((c) => results.get(cellKey(sc, s, c))?.state !== "pass").map((c) => `${sc} · ${s} · ${c}`)));
  assert.deepEqual(gaps, [], out);
});
