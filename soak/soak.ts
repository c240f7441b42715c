// Soak run (issue 3, item 8): mixed traffic both ways through the real gateway process while Prosody,
// Redis and the gateway are restarted at random, then a count of what arrived.
//
//   npm run soak                       # 10 minutes (SOAK_SECONDS=600)
//   SOAK_SECONDS=120 npm run soak      # a short try
//   SOAK_INSTANCES=3 npm run soak      # three gateways on one Redis, random kills (see "Several instances")
//   Other knobs: SOAK_RATE (messages/s, both directions together; default 10), SOAK_RESTART_MIN_S /
//   SOAK_RESTART_MAX_S (pause between restarts; default 30 / 90), SOAK_KINDS (what may be restarted;
//   default gateway,redis,prosody), SOAK_RESEND_AFTER_S (how long a client waits for a receipt before
//   it resends; default 45), SOAK_DRAIN_SECONDS (bound of the final drain; default 300, raised to
//   leave room for every resend), SOAK_SEED (random seed), SOAK_OUT_DIR (where logs are kept; default
//   a new /tmp/switchboard-soak-* dir), SOAK_SNAPSHOT=0 (run the gateway from the working tree instead
//   of a copy of src/ taken at the start: by default every restart runs the code the soak started
//   with, so edits made meanwhile cannot break or change it mid-run), SOAK_INSTANCES (gateway
//   processes; default 1), SOAK_ALLOW_ALL_DOWN=1 (with several: a restart may take down the last one
//   up). Exit code: 0 clean, 1 any loss (either direction) or any duplicate to a phone, 2 harness
//   failure.
//
// Set-up: Redis with AOF and `appendfsync always` (soak/durable-redis.ts; the test fixture only does
// `everysec`), Prosody (test fixture; restart() keeps accounts and offline storage), the fake Twilio
// (test/fakes), and the gateway as a child process (test/support/gateway-process.ts) with
// SMS_PROVIDER=twilio, TWILIO_API_URL = the fake, PUBLIC_URL=https://gw.example.test and a fixed
// INSTANCE_ID, so a restarted gateway resumes its own pending work. Four users are linked to numbers
// through the admin API; five phone numbers talk to them.
//
// Restarts, one every SOAK_RESTART_MIN_S..MAX_S seconds, of one of:
//   gateway  SIGKILL (a crash) or SIGTERM (graceful; exit code checked), started again after 0-3 s;
//   redis    SIGKILL or SIGTERM, started again on its AOF after 1-4 s;
//   prosody  graceful restart keeping its data (the fixture's restart(); no SIGKILL: a killed Prosody
//            loses messages of its own, which says nothing about the gateway).
// At least half of all restarts are SIGKILLs: whenever the next one must be a kill to keep that true,
// it is a gateway or Redis SIGKILL.
//
// Several instances (SOAK_INSTANCES=N > 1; docs/developers/design.md "Several instances"): N gateway
// processes on the one Redis, INSTANCE_ID soak-1..soak-N, each with its own HTTP port, journal
// (SOAK_OUT_DIR/soak-i/journal) and log (SOAK_OUT_DIR/gateway-soak-i.log); the media directory is
// shared. Every inbound POST and status callback goes to a random instance that is up; a retry (the
// same rule as above) goes to another one, as a load balancer would. A "gateway" restart picks an
// instance that is up, the XMPP link holder half the time outright (else any, the holder included),
// SIGKILLs or SIGTERMs it and starts it again, in the background: the next restart may come while it
// is still on its way back. It never takes down the last instance up (it restarts Redis or Prosody
// instead, or nothing), unless SOAK_ALLOW_ALL_DOWN=1. Every instance's /readyz (admin details) is
// read every 250 ms to follow who holds the link, under which fencing token, and whether it is
// connected; the victim's own /readyz just before the stop says whether it held the link. The table
// adds restarts per instance (and of them, while holding the link), link takeovers (a new fencing
// token connected) and how long each took after a SIGKILL or SIGTERM of the holder, the longest time
// no instance was connected, the longest time the lease was held by an instance that was not, and the
// longest gap in inbound delivery to XMPP. With one instance (the default) it runs and reports as
// before, under INSTANCE_ID=soak.
//
// Counting rules
// Inbound (phone → XMPP): each SMS has a unique MessageSid and a unique token in its body. It is signed
//   for PUBLIC_URL and POSTed to /twilio/sms. A connection error, a timeout (15 s, Twilio's) or a 5xx
//   is retried with the same MessageSid (as Twilio's #rc/#rp connection overrides would) for ~35 s;
//   a 200 is never retried; a 4xx is not retried. "sent" = got a 200. Those that never got one are
//   counted apart ("never accepted") and are not expected anywhere. "delivered" = unique tokens that
//   reached the linked user's XMPP client (live or from offline storage after a re-login). "lost" =
//   sent but never delivered. "same-id repeats" = chat stanzas whose id a client had seen already
//   (allowed, documented window); "different-id duplicates" = a token seen again under a new id (not
//   allowed by the contract).
// Outbound (XMPP → phone): each XMPP user behaves like a careful client. It writes a chat message
//   (id = body token, with a XEP-0184 receipt request) to +1555…@sms.localhost, then an IQ ping to its
//   server. A c2s session's stanzas are handled in order, so the ping's answer proves Prosody took the
//   message and either handed it to the component or bounced it: only then is it "sent" (confirmed).
//   A message written while the client was disconnected is not sent; one whose ping got no answer
//   (Prosody restarting) is "unconfirmed" — shown apart, never counted as lost, never resent.
//   Receipts: the fake Twilio sends no status callbacks by itself, so the soak does, as Twilio would:
//   for every message the fake creates it POSTs one signed `delivered` callback to the path and query
//   of the create's StatusCallback URL (signed for PUBLIC_URL), retried like the inbound POSTs
//   (connection error, timeout, 5xx; for ~35 s); after one 200 it is never posted again (the table
//   shows callbacks that never got one). The gateway then sends the sender a
//   XEP-0184 <received id='{token}'/> from the contact; "receipts received" counts those tokens.
//   Resends: XEP-0114 has no acknowledgements, so a stanza Prosody wrote into the gateway's socket at
//   the instant the gateway is SIGKILLed is gone, and only the sender can notice — by the missing
//   receipt. So a confirmed message that has neither a receipt nor an error reply SOAK_RESEND_AFTER_S
//   after it was written is written again by its client, with the SAME stanza id and body (and a
//   receipt request), then again every SOAK_RESEND_AFTER_S, at most 3 resends, only while the client
//   is connected (else at its next chance), each followed by the same IQ ping. The final drain keeps
//   resending. The gateway remembers each (sender bare JID, stanza id) for DEDUPE_TTL, so a resend of
//   a message it already took can never text a phone twice; "duplicated to a phone" checks exactly
//   that. "resends by the client" = resent stanzas written; "recovered by a resend" = tokens first
//   created at the fake Twilio only after their first resend was written.
//   Counting: "created" = unique tokens the fake Twilio created. "duplicated to a phone" = a token
//   created more than once (any message, confirmed or not). An error reply for a token counts as
//   "reported": Prosody's own bounce while the component is away ("Component unavailable",
//   <not-connected/>), the gateway's "may or may not have been sent", or another gateway error (e.g.
//   Redis down: "not sent, try again"); each is shown on its own line (also when it answered a resend).
//   "lost" = confirmed, never created and no error reply, after the resends. Every loss fails the
//   run, a stanza lost at a gateway SIGKILL included (the listing notes when a lost message was
//   written ≤ 1 s before or during one; with several instances, only a SIGKILL of the instance that
//   held the XMPP link then counts: a standby has no component socket to lose a stanza in). A "not sent" reply for a token that was created anyway is
//   shown as a contradiction.
// Every lost message is listed with the restarts around it; the soak's own event log, the gateway
// log, and Prosody's and Redis's logs are kept in the output dir.
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "redis";

import { inboundSmsParams, signTwilioRequest, startFakeTwilio, statusCallbackParams, type FakeMessageResource, type FakeTwilio } from "../test/fakes/fake-twilio.js";
import { startGatewayProcess, type GatewayProcess } from "../test/support/gateway-process.js";
import { connectClient, xml, type StanzaElement, type TestClient } from "../test/support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../test/support/xmpp-server.js";
import { createDurableRedis, type DurableRedis } from "./durable-redis.js";

// ---------------------------------------------------------------------------------------------------
// settings

const num = (name: string, dflt: number): number => {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
};

const SOAK_SECONDS = num("SOAK_SECONDS", 600);
const RATE = Math.max(0.1, num("SOAK_RATE", 10));
const RESTART_MIN_S = num("SOAK_RESTART_MIN_S", 30);
const RESTART_MAX_S = Math.max(RESTART_MIN_S, num("SOAK_RESTART_MAX_S", 90));
const RESEND_AFTER_MS = Math.max(1, num("SOAK_RESEND_AFTER_S", 45)) * 1000;
const MAX_RESENDS = 3;
// Room for a message confirmed at the very end to be resent MAX_RESENDS times and answered.
const DRAIN_SECONDS = Math.max(num("SOAK_DRAIN_SECONDS", 300), ((MAX_RESENDS + 1) * RESEND_AFTER_MS) / 1000 + 60);
const KINDS = (process.env.SOAK_KINDS || "gateway,redis,prosody")
  .split(",")
  .map((k) => k.trim())
  .filter((k): k is RestartKind => k === "gateway" || k === "redis" || k === "prosody");
if (KINDS.length === 0) throw new Error("SOAK_KINDS must name at least one of gateway, redis, prosody");
// The drain ends this long after the last change, if not everything is accounted for (longer than
// the pause between two resends, which are changes).
const DRAIN_QUIET_S = Math.max(60, RESEND_AFTER_MS / 1000 + 15);
const POST_TIMEOUT_MS = 15_000; // Twilio's webhook timeout
const POST_RETRY_DELAYS_MS = [500, 1000, 2000, 3000, 5000, 5000, 5000, 5000, 5000]; // ~35 s of retries
const PING_TIMEOUT_MS = 5000;

const DOMAIN = "sms.localhost";
const SECRET = "soak-secret";
const ACCOUNT_SID = `AC${"5".repeat(32)}`;
const AUTH_TOKEN = "soak-auth-token";
const PUBLIC_URL = "https://gw.example.test";
// SOAK_INSTANCES > 1: several gateway processes against the one Redis (docs/developers/design.md
// "Several instances"). One instance keeps today's name, so a soak of one runs exactly as before.
const INSTANCES = Math.max(1, Math.floor(num("SOAK_INSTANCES", 1)));
const MULTI = INSTANCES > 1;
const INSTANCE_IDS = MULTI ? Array.from({ length: INSTANCES }, (_, i) => `soak-${i + 1}`) : ["soak"];
const ALLOW_ALL_DOWN = process.env.SOAK_ALLOW_ALL_DOWN === "1";
const LINK_POLL_MS = 250;
const USERS = ["alice", "bob", "carol", "dave"].map((name, i) => ({ name, password: `${name}-pw`, phone: `+1555000000${i + 1}` }));
const CONTACTS = [1, 2, 3, 4, 5].map((i) => `+1555222000${i}`);
const TOKEN_RE = /\b((?:in|out)-\d+-[0-9a-z]+)\b/;

// Deterministic randomness when SOAK_SEED is given (mulberry32).
let seed = (process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) : Date.now()) >>> 0;
const initialSeed = seed;
function random(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const between = (a: number, b: number): number => a + random() * (b - a);
const rnd4 = (): string =>
  Math.floor(random() * 36 ** 4)
    .toString(36)
    .padStart(4, "0");

const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const OUT_DIR = process.env.SOAK_OUT_DIR || join(tmpdir(), `switchboard-soak-${stamp}`);
mkdirSync(OUT_DIR, { recursive: true });
const EVENTS = join(OUT_DIR, "events.jsonl");

let t0 = Date.now();
const rel = (t: number): string => `+${((t - t0) / 1000).toFixed(1)}s`;
function event(type: string, data: Record<string, unknown> = {}): void {
  appendFileSync(EVENTS, JSON.stringify({ t: Date.now(), rel: (Date.now() - t0) / 1000, type, ...data }) + "\n");
}
function say(line: string): void {
  process.stdout.write(`[soak ${rel(Date.now())}] ${line}\n`);
}

// ---------------------------------------------------------------------------------------------------
// bookkeeping

interface InboundRecord {
  token: string;
  sid: string;
  from: string;
  user: string;
  firstPostAt: number;
  acceptedAt?: number;
  attempts: number;
  outcome: "pending" | "accepted" | "rejected" | "never-accepted";
  lastError?: string;
}

interface OutboundRecord {
  token: string;
  user: string;
  to: string;
  sentAt: number;
  confirmedAt?: number;
  state: "writing" | "confirmed" | "unconfirmed" | "not-written";
  /** when the client last wrote it (the first time or a resend) */
  lastWriteAt: number;
  /** resends written, and when */
  resendAts: number[];
  resendsConfirmed: number;
  /** a resend is being written / pinged */
  resending: boolean;
  /** no resend before this (after a failed write) */
  notBefore: number;
}

/** One status callback the soak posts (as Twilio would) for a message the fake Twilio created. */
interface CallbackRecord {
  token?: string;
  sid: string;
  path?: string;
  attempts: number;
  outcome: "pending" | "accepted" | "rejected" | "never-accepted" | "no-callback-url";
  lastError?: string;
}

type ErrorKind = "server-bounce" | "maybe-sent" | "not-sent";
interface ErrorRecord {
  kind: ErrorKind;
  condition: string;
  text: string;
  at: number;
}

type RestartKind = "gateway" | "redis" | "prosody";
interface RestartRecord {
  kind: RestartKind;
  mode: "SIGKILL" | "SIGTERM";
  downAt: number;
  /** when the process was gone (gateway) */
  exitAt?: number;
  upAt?: number;
  note?: string;
  /** gateway: which instance */
  instance?: string;
  /** gateway: it held the XMPP link when it was stopped (its /readyz just before, else the link monitor) */
  heldLink?: boolean;
  /** gateway, when it held the link: the lease's fencing token then */
  linkToken?: number;
}

const inbound = new Map<string, InboundRecord>();
const outbound = new Map<string, OutboundRecord>();
/** inbound token → the stanza ids it arrived under (and how often each) */
const delivered = new Map<string, { ids: Map<string, number>; firstAt: number; user: string }>();
const seenStanzaIds = new Set<string>();
let sameIdRepeats = 0;
let differentIdDuplicates = 0;
let misrouted = 0;
const errorReplies = new Map<string, ErrorRecord[]>();
/** outbound token → XEP-0184 receipts received for it */
const receipts = new Map<string, { firstAt: number; count: number; user: string }>();
let receiptsUnmatched = 0;
const callbacks: CallbackRecord[] = [];
/** outbound token → when the fake Twilio first got the create request that stored it */
const firstCreatedAt = new Map<string, number>();
let createdSeen = 0; // twilio.created entries already handed to postStatusCallback
const callbackInflight = new Set<Promise<void>>();
const resendInflight = new Set<Promise<void>>();
const restarts: RestartRecord[] = [];
let outboundNotWrittenOffline = 0; // client was offline: nothing written, not counted at all
const harnessProblems: string[] = [];

// ---------------------------------------------------------------------------------------------------
// XMPP users

interface User {
  name: string;
  password: string;
  phone: string;
  bare: string;
  client?: TestClient;
  idx: number;
  connecting: boolean;
  logins: number;
}

const users: User[] = USERS.map((u) => ({ ...u, bare: `${u.name}@localhost`, idx: 0, connecting: false, logins: 0 }));

function handleStanza(u: User, el: StanzaElement): void {
  if (el.name !== "message") return;
  const from = el.attrs.from ?? "";
  if (!from.endsWith(`@${DOMAIN}`)) return;
  const id = el.attrs.id ?? "";
  if (el.attrs.type === "error") {
    const rec = outbound.get(id);
    if (!rec) {
      event("unmatched-error", { user: u.name, stanza: el.toString().slice(0, 500) });
      return;
    }
    const err = el.getChild("error");
    const condition = err?.getChildElements().find((c) => c.getNS() === "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name !== "text")?.name ?? "?";
    const text = err?.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas") ?? "";
    const kind: ErrorKind = err?.getChild("not-connected", "xmpp:prosody.im/protocol/component") ? "server-bounce" : /may or may not/i.test(text) ? "maybe-sent" : "not-sent";
    const list = errorReplies.get(id) ?? [];
    list.push({ kind, condition, text, at: Date.now() });
    errorReplies.set(id, list);
    event("error-reply", { user: u.name, token: id, kind, condition, text });
    return;
  }
  const received = el.getChild("received", "urn:xmpp:receipts");
  if (received) {
    const token = received.attrs.id ?? "";
    const rec = outbound.get(token);
    if (!rec || rec.user !== u.name) {
      receiptsUnmatched++;
      event("unmatched-receipt", { user: u.name, stanza: el.toString().slice(0, 500) });
      return;
    }
    const r = receipts.get(token);
    if (r) r.count++;
    else receipts.set(token, { firstAt: Date.now(), count: 1, user: u.name });
    event("receipt", { user: u.name, token, count: r ? r.count : 1 });
    return;
  }
  const body = el.getChildText("body");
  if (body === null) return; // chat states
  const m = TOKEN_RE.exec(body);
  if (!m?.[1]?.startsWith("in-")) {
    event("unexpected-message", { user: u.name, stanza: el.toString().slice(0, 500) });
    return;
  }
  const token = m[1];
  const rec = inbound.get(token);
  if (rec && rec.user !== u.name) misrouted++;
  if (id && seenStanzaIds.has(id)) {
    sameIdRepeats++;
    event("same-id-repeat", { user: u.name, token, id, delay: Boolean(el.getChild("delay", "urn:xmpp:delay")) });
  } else if (id) {
    seenStanzaIds.add(id);
  }
  const d = delivered.get(token);
  if (!d) {
    delivered.set(token, { ids: new Map([[id, 1]]), firstAt: Date.now(), user: u.name });
    event("delivered", { user: u.name, token, id });
    return;
  }
  if (!d.ids.has(id)) {
    differentIdDuplicates++;
    event("different-id-duplicate", { user: u.name, token, id, earlierIds: [...d.ids.keys()] });
  }
  d.ids.set(id, (d.ids.get(id) ?? 0) + 1);
}

function scan(u: User, c: TestClient | undefined = u.client): void {
  if (!c) return;
  while (u.idx < c.received.length) handleStanza(u, c.received[u.idx++]!);
}

let server: XmppServer;

async function ensureOnline(u: User): Promise<void> {
  if (u.connecting) return;
  if (u.client?.isOnline()) return;
  u.connecting = true;
  try {
    const old = u.client;
    if (old) {
      scan(u, old);
      u.client = undefined;
      await old.stop();
      event("client-offline", { user: u.name });
    }
    const c = await connectClient({ server, username: u.name, password: u.password, timeoutMs: 5000 });
    u.idx = 0;
    u.client = c;
    u.logins++;
    event("client-online", { user: u.name, logins: u.logins });
  } catch (err) {
    event("client-login-failed", { user: u.name, err: (err as Error).message.slice(0, 300) });
  } finally {
    u.connecting = false;
  }
}

// ---------------------------------------------------------------------------------------------------
// traffic

interface Instance {
  id: string;
  gp: GatewayProcess;
  /** started and not being stopped: posts may go to it */
  up: boolean;
  /** a restart of it is under way */
  restarting: boolean;
}
const instances: Instance[] = [];
/** POSTs that went to another instance on a retry, because the one tried refused, reset or answered 5xx. */
let postsMovedOn = 0;

/**
 * Where a POST goes, as a load balancer would send it: a random instance that is up, another than the
 * one that just failed when there is one. With none up, any (the POST fails and is retried).
 */
function target(failed?: Instance): Instance {
  if (instances.length === 1) return instances[0]!;
  const up = instances.filter((i) => i.up);
  const others = up.filter((i) => i !== failed);
  if (failed && others.length > 0) postsMovedOn++;
  return pick(others.length > 0 ? others : up.length > 0 ? up : instances);
}

let seq = 0;
const inflight = new Set<Promise<void>>();
function track(p: Promise<void>): void {
  inflight.add(p);
  void p.finally(() => inflight.delete(p));
}

async function postInbound(): Promise<void> {
  const user = pick(users);
  const from = pick(CONTACTS);
  const token = `in-${++seq}-${rnd4()}`;
  const params = inboundSmsParams({ from, to: user.phone, body: `soak ${token}`, accountSid: ACCOUNT_SID });
  const sid = params.MessageSid!;
  const rec: InboundRecord = { token, sid, from, user: user.name, firstPostAt: Date.now(), attempts: 0, outcome: "pending" };
  inbound.set(token, rec);
  const body = new URLSearchParams(params).toString();
  const headers = { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signTwilioRequest(AUTH_TOKEN, `${PUBLIC_URL}/twilio/sms`, params) };
  let failed: Instance | undefined;
  for (let attempt = 0; ; attempt++) {
    rec.attempts++;
    let retry: boolean;
    const to = target(failed);
    try {
      const res = await fetch(`${to.gp.url}/twilio/sms`, { method: "POST", headers, body, signal: AbortSignal.timeout(POST_TIMEOUT_MS) });
      const text = await res.text();
      if (res.status === 200) {
        rec.outcome = "accepted";
        rec.acceptedAt = Date.now();
        event("in-accepted", { token, sid, attempts: rec.attempts });
        return;
      }
      rec.lastError = `HTTP ${res.status} ${text.slice(0, 200)}`;
      retry = res.status >= 500;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      rec.lastError = `${e.name}: ${e.cause?.code ?? e.cause?.message ?? e.message}`;
      retry = true;
    }
    failed = to;
    event("in-post-failed", { token, sid, attempt: rec.attempts, err: rec.lastError, retry, ...(MULTI ? { instance: to.id } : {}) });
    if (!retry) {
      rec.outcome = "rejected";
      return;
    }
    const delay = POST_RETRY_DELAYS_MS[attempt];
    if (delay === undefined) {
      rec.outcome = "never-accepted";
      return;
    }
    await sleep(delay);
  }
}

async function sendOutbound(): Promise<void> {
  const user = pick(users);
  const c = user.client;
  if (!c?.isOnline()) {
    outboundNotWrittenOffline++;
    return;
  }
  const to = pick(CONTACTS);
  const token = `out-${++seq}-${rnd4()}`;
  const rec: OutboundRecord = { token, user: user.name, to, sentAt: Date.now(), state: "writing", lastWriteAt: Date.now(), resendAts: [], resendsConfirmed: 0, resending: false, notBefore: 0 };
  outbound.set(token, rec);
  try {
    await withTimeout(c.send(chatStanza(rec)), PING_TIMEOUT_MS);
  } catch (err) {
    rec.state = "not-written";
    event("out-not-written", { token, err: (err as Error).message });
    return;
  }
  try {
    const reply = await c.iq(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })), PING_TIMEOUT_MS);
    if (reply.attrs.type === "result") {
      rec.state = "confirmed";
      rec.confirmedAt = Date.now();
      event("out-confirmed", { token, user: user.name, to, sentRel: (rec.sentAt - t0) / 1000 });
      return;
    }
  } catch {
    /* no answer */
  }
  rec.state = "unconfirmed";
  event("out-unconfirmed", { token, user: user.name, to });
}

/** The chat stanza of an outbound message; a resend writes exactly the same one (same id and body). */
function chatStanza(r: OutboundRecord): StanzaElement {
  return xml("message", { to: `${r.to}@${DOMAIN}`, type: "chat", id: r.token }, xml("body", {}, `soak ${r.token}`), xml("request", { xmlns: "urn:xmpp:receipts" }));
}

/** Still waiting for its client to learn its fate: no receipt, no error reply. */
const unanswered = (r: OutboundRecord): boolean => !receipts.has(r.token) && !errorReplies.has(r.token);

/**
 * The careful client: a confirmed message with neither a receipt nor an error reply RESEND_AFTER_MS
 * after it was last written is written again, same id and body, at most MAX_RESENDS times, and only
 * while its client is connected. Each resend is followed by an IQ ping, like the first write.
 */
function resendDue(): void {
  const now = Date.now();
  for (const r of outbound.values()) {
    if (r.state !== "confirmed" || r.resending || r.resendAts.length >= MAX_RESENDS || !unanswered(r)) continue;
    if (now < r.lastWriteAt + RESEND_AFTER_MS || now < r.notBefore) continue;
    const u = users.find((x) => x.name === r.user)!;
    const c = u.client;
    if (!c?.isOnline()) continue;
    r.resending = true;
    const p = resend(r, c).finally(() => {
      r.resending = false;
    });
    resendInflight.add(p);
    void p.finally(() => resendInflight.delete(p));
  }
}

async function resend(r: OutboundRecord, c: TestClient): Promise<void> {
  try {
    await withTimeout(c.send(chatStanza(r)), PING_TIMEOUT_MS);
  } catch (err) {
    r.notBefore = Date.now() + 5000;
    event("out-resend-not-written", { token: r.token, err: (err as Error).message });
    return;
  }
  const n = r.resendAts.push(Date.now());
  r.lastWriteAt = Date.now();
  event("out-resent", { token: r.token, user: r.user, n, created: firstCreatedAt.has(r.token) });
  try {
    const reply = await c.iq(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })), PING_TIMEOUT_MS);
    if (reply.attrs.type === "result") {
      r.resendsConfirmed++;
      event("out-resend-confirmed", { token: r.token, n });
      return;
    }
  } catch {
    /* no answer */
  }
  event("out-resend-unconfirmed", { token: r.token, n });
}

// ---------------------------------------------------------------------------------------------------
// status callbacks (what Twilio does once a message is delivered)

const firstValue = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** Hands every message the fake Twilio created since the last call to postStatusCallback. */
function pollCreated(twilio: FakeTwilio): void {
  while (createdSeen < twilio.created.length) {
    const m = twilio.created[createdSeen++]!;
    // The create request that stored it: the latest create with its body and To (stored in the tick
    // the request was recorded, so it is already there).
    let req: FakeTwilio["requests"][number] | undefined;
    for (let i = twilio.requests.length - 1; i >= 0; i--) {
      const q = twilio.requests[i]!;
      if (q.method === "POST" && /\/Messages\.json(\?|$)/.test(q.path) && firstValue(q.form.Body) === m.body && firstValue(q.form.To) === m.to) {
        req = q;
        break;
      }
    }
    const token = TOKEN_RE.exec(m.body)?.[1];
    if (token && !firstCreatedAt.has(token)) firstCreatedAt.set(token, req?.at ?? Date.now());
    const cb = firstValue(req?.form.StatusCallback);
    const rec: CallbackRecord = { sid: m.sid, attempts: 0, outcome: "pending", ...(token ? { token } : {}) };
    callbacks.push(rec);
    if (!cb || !cb.startsWith(`${PUBLIC_URL}/`)) {
      rec.outcome = "no-callback-url";
      harnessProblems.push(`message ${m.sid} (${token ?? "no token"}) was created without a StatusCallback under PUBLIC_URL: ${String(cb)}`);
      continue;
    }
    const u = new URL(cb);
    rec.path = u.pathname + u.search;
    const p = postStatusCallback(m, rec);
    callbackInflight.add(p);
    void p.finally(() => callbackInflight.delete(p));
  }
}

/** One signed `delivered` callback, retried like an inbound POST until it gets a 200. */
async function postStatusCallback(m: FakeMessageResource, rec: CallbackRecord): Promise<void> {
  const path = rec.path!;
  const params = statusCallbackParams({ sid: m.sid, status: "delivered", from: m.from ?? "", to: m.to, accountSid: ACCOUNT_SID });
  const body = new URLSearchParams(params).toString();
  const headers = { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signTwilioRequest(AUTH_TOKEN, `${PUBLIC_URL}${path}`, params) };
  let failed: Instance | undefined;
  for (let attempt = 0; ; attempt++) {
    rec.attempts++;
    let retry: boolean;
    const to = target(failed);
    try {
      const res = await fetch(`${to.gp.url}${path}`, { method: "POST", headers, body, signal: AbortSignal.timeout(POST_TIMEOUT_MS) });
      const text = await res.text();
      if (res.status === 200) {
        rec.outcome = "accepted";
        event("status-callback-accepted", { token: rec.token, sid: m.sid, attempts: rec.attempts });
        return;
      }
      rec.lastError = `HTTP ${res.status} ${text.slice(0, 200)}`;
      retry = res.status >= 500;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      rec.lastError = `${e.name}: ${e.cause?.code ?? e.cause?.message ?? e.message}`;
      retry = true;
    }
    failed = to;
    event("status-callback-failed", { token: rec.token, sid: m.sid, attempt: rec.attempts, err: rec.lastError, retry, ...(MULTI ? { instance: to.id } : {}) });
    if (!retry) {
      rec.outcome = "rejected";
      return;
    }
    const delay = POST_RETRY_DELAYS_MS[attempt];
    if (delay === undefined) {
      rec.outcome = "never-accepted";
      return;
    }
    await sleep(delay);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]);
}

// ---------------------------------------------------------------------------------------------------
// restarts

let redis: DurableRedis;

async function startWithRetries(inst: Instance, why: string): Promise<void> {
  const gw = inst.gp;
  const who = MULTI ? inst.id : "gateway";
  for (let i = 1; ; i++) {
    try {
      await gw.start();
      inst.up = true;
      return;
    } catch (err) {
      const msg = (err as Error).message.slice(0, 500);
      event("gateway-start-failed", { why, try: i, err: msg, ...(MULTI ? { instance: inst.id } : {}) });
      say(`${who} start failed (${why}, try ${i}): ${msg.split("\n")[0]}`);
      if (gw.running()) await gw.kill();
      if (i >= 3) throw err;
      await sleep(2000);
    }
  }
}

/** Gateway restarts still under way (with several instances they run beside the next restarts). */
const restartsInflight = new Set<Promise<void>>();
let backgroundFailure: unknown;
function throwIfBackgroundFailed(): void {
  if (backgroundFailure !== undefined) throw backgroundFailure instanceof Error ? backgroundFailure : new Error(String(backgroundFailure));
}
/** When the traffic stopped (the end of what the gap figures look at). */
let trafficStoppedAt: number | undefined;

/**
 * The instance a gateway restart stops, with what its /readyz said just before. With several: one
 * that is up, the XMPP link holder with extra weight (half the time it is taken outright, so the
 * takeover is exercised often); none while stopping one would leave no instance up, unless
 * SOAK_ALLOW_ALL_DOWN=1.
 */
async function chooseVictim(): Promise<{ victim?: Instance; details?: ReadyDetails }> {
  if (!MULTI) return { victim: instances[0]!, details: await readyDetails(instances[0]!) };
  const up = instances.filter((i) => i.up);
  if (up.length === 0 || (up.length === 1 && !ALLOW_ALL_DOWN)) return {};
  const all = await Promise.all(up.map(readyDetails));
  const h = up.findIndex((_, i) => holdsLink(all[i]));
  const idx = h >= 0 && random() < 0.5 ? h : Math.floor(random() * up.length);
  return { victim: up[idx]!, details: all[idx] };
}

async function restartOne(): Promise<void> {
  const kills = restarts.filter((r) => r.mode === "SIGKILL").length;
  const mustKill = kills * 2 < restarts.length + 1;
  let kind = pick(KINDS);
  const killable = KINDS.filter((k) => k !== "prosody");
  if (mustKill && kind === "prosody" && killable.length > 0) kind = pick(killable);
  let victim: Instance | undefined;
  let before: ReadyDetails | undefined;
  if (kind === "gateway") {
    ({ victim, details: before } = await chooseVictim());
    if (!victim) {
      // Every other instance is down or on its way back: something else goes down instead, if anything may.
      const others = KINDS.filter((k) => k !== "gateway" && (!mustKill || k === "redis"));
      if (others.length === 0) {
        event("restart-skipped", { why: "no gateway instance may go down now" });
        return;
      }
      kind = pick(others);
    }
  }
  const mode: RestartRecord["mode"] = kind === "prosody" ? "SIGTERM" : mustKill || random() < 0.5 ? "SIGKILL" : "SIGTERM";
  const r: RestartRecord = { kind, mode, downAt: Date.now() };
  const n = restarts.push(r);
  if (kind === "gateway" && victim) {
    r.instance = victim.id;
    // Its own word just before; if it could not answer, what the link monitor saw last.
    r.heldLink = before ? holdsLink(before) : linkNow.holder === victim.id;
    if (r.heldLink) r.linkToken = before?.cluster?.xmppLink?.token ?? linkNow.token;
  }
  const who = MULTI && victim ? ` ${victim.id}${r.heldLink ? " (XMPP link holder)" : ""}` : "";
  say(`restart #${n}: ${kind}${who} ${mode}`);
  event("restart-begin", { n, kind, mode, ...(MULTI && victim ? { instance: victim.id, heldLink: r.heldLink } : {}) });
  if (kind === "gateway" && victim) {
    const p = restartGateway(r, n, victim);
    if (!MULTI) return p;
    // Several instances: the next restart may come while this one is still on its way back.
    const q = p.catch((err: unknown) => {
      backgroundFailure ??= err;
    });
    restartsInflight.add(q);
    void q.finally(() => restartsInflight.delete(q));
    return;
  }
  if (kind === "redis") {
    if (mode === "SIGKILL") await redis.kill();
    else await redis.stop(5000);
    event("redis-down");
    await sleep(between(1000, 4000));
    await redis.start();
  } else {
    try {
      await server.restart();
    } catch (err) {
      say(`prosody restart failed once: ${(err as Error).message.split("\n")[0]}; trying again`);
      await sleep(1000);
      await server.restart();
    }
  }
  r.upAt = Date.now();
  event("restart-end", { n, kind, mode, downFor: (r.upAt - r.downAt) / 1000, note: r.note });
}

async function restartGateway(r: RestartRecord, n: number, inst: Instance): Promise<void> {
  const gw = inst.gp;
  inst.up = false; // no new POSTs go to it
  inst.restarting = true;
  try {
    if (r.mode === "SIGKILL") {
      await gw.kill();
    } else {
      const started = Date.now();
      const code = await gw.terminate(15_000);
      const ms = Date.now() - started;
      r.note = `exit ${code} in ${(ms / 1000).toFixed(1)} s`;
      if (code !== 0) harnessProblems.push(`${MULTI ? inst.id : "gateway"} SIGTERM at ${rel(r.downAt)} ended with exit code ${code} after ${ms} ms`);
    }
    r.exitAt = Date.now();
    event("gateway-down", { note: r.note, ...(MULTI ? { instance: inst.id } : {}) });
    await sleep(between(0, 3000));
    await startWithRetries(inst, `restart #${n}`);
  } finally {
    inst.restarting = false;
  }
  r.upAt = Date.now();
  event("restart-end", { n, kind: r.kind, mode: r.mode, downFor: (r.upAt - r.downAt) / 1000, note: r.note, ...(MULTI ? { instance: inst.id } : {}) });
}

// ---------------------------------------------------------------------------------------------------
// the XMPP link: who holds it, over time (every instance's /readyz, every LINK_POLL_MS)

interface ReadyDetails {
  xmpp?: { connected?: boolean };
  cluster?: { instance?: string; xmppLink?: { heldHere?: boolean; token?: number } };
}
interface LinkState {
  holder?: string;
  /** the lease's fencing token: a new one for each taking of the lease */
  token?: number;
  connected: boolean;
}
/** Every change of who holds the link and whether it is connected, from the start of the traffic. */
const linkChanges: (LinkState & { at: number })[] = [];
let linkNow: LinkState = { connected: false };
/** Polls in which two instances said they held the link (lease or connection). */
let twoHolderPolls = 0;

async function readyDetails(inst: Instance): Promise<ReadyDetails | undefined> {
  if (!inst.gp.running()) return undefined;
  try {
    return (await inst.gp.ready()).body as ReadyDetails;
  } catch {
    return undefined;
  }
}

/** It holds the link lease, or is still connected (one that lost the lease drops its connection at once). */
const holdsLink = (d: ReadyDetails | undefined): boolean => d?.cluster?.xmppLink?.heldHere === true || d?.xmpp?.connected === true;

async function pollLink(): Promise<void> {
  const all = await Promise.all(instances.map(readyDetails));
  const holding = instances.flatMap((inst, i) => (holdsLink(all[i]) ? [{ inst, d: all[i]! }] : []));
  if (holding.length > 1) {
    twoHolderPolls++;
    event("link-two-holders", { holders: holding.map(({ inst, d }) => ({ instance: inst.id, lease: d.cluster?.xmppLink, connected: d.xmpp?.connected })) });
  }
  // Of two (a hand-over caught mid-way), the connected one.
  const h = holding.find(({ d }) => d.xmpp?.connected === true) ?? holding[0];
  const state: LinkState = h
    ? { holder: h.inst.id, connected: h.d.xmpp?.connected === true, ...(h.d.cluster?.xmppLink?.token !== undefined ? { token: h.d.cluster.xmppLink.token } : {}) }
    : { connected: false };
  if (state.holder === linkNow.holder && state.token === linkNow.token && state.connected === linkNow.connected) return;
  linkNow = state;
  linkChanges.push({ at: Date.now(), ...state });
  event("link", { ...state });
}

/** Takeovers: a connected holder under a fencing token other than the last connected one's. */
function linkTakeovers(): { at: number; from?: string; to: string; token?: number }[] {
  const out: { at: number; from?: string; to: string; token?: number }[] = [];
  let last: (LinkState & { at: number }) | undefined;
  for (const c of linkChanges) {
    if (!c.connected || !c.holder) continue;
    if (last && (c.token !== last.token || c.holder !== last.holder))
      out.push({ at: c.at, to: c.holder, ...(last.holder ? { from: last.holder } : {}), ...(c.token !== undefined ? { token: c.token } : {}) });
    last = c;
  }
  return out;
}

/** Longest stretch between `from` and `to` in which the link's state was `bad`. */
function longestLinkStretch(bad: (s: LinkState) => boolean, from: number, to: number): { ms: number; start: number } {
  let state: LinkState = { connected: false };
  for (const c of linkChanges) if (c.at <= from) state = c;
  let best = { ms: 0, start: from };
  let since: number | undefined = bad(state) ? from : undefined;
  for (const c of linkChanges) {
    if (c.at <= from) continue;
    if (c.at > to) break;
    if (bad(c) && since === undefined) since = c.at;
    if (!bad(c) && since !== undefined) {
      if (c.at - since > best.ms) best = { ms: c.at - since, start: since };
      since = undefined;
    }
  }
  if (since !== undefined && to - since > best.ms) best = { ms: to - since, start: since };
  return best;
}

/** How long after a gateway stop of the link holder another taking of the lease was connected. */
function takeoverAfter(r: RestartRecord): number | undefined {
  const c = linkChanges.find((x) => x.at >= r.downAt && x.connected && x.holder !== undefined && (x.token !== r.linkToken || x.holder !== r.instance));
  return c ? c.at - r.downAt : undefined;
}

// ---------------------------------------------------------------------------------------------------
// report

/** Where an instance's log is kept: gateway.log for the one of a single-instance soak. */
const logPath = (inst: Instance): string => join(OUT_DIR, MULTI ? `gateway-${inst.id}.log` : "gateway.log");

function copyLogs(): { gatewayLogs: string[] } {
  for (const inst of instances) {
    try {
      writeFileSync(logPath(inst), inst.gp.log());
    } catch {
      /* best effort */
    }
  }
  for (const [src, dst] of [
    [server?.logFile, "prosody.log"],
    [server ? join(server.dir, "prosody.err") : undefined, "prosody.err"],
  ] as const) {
    try {
      if (src && existsSync(src)) copyFileSync(src, join(OUT_DIR, dst));
    } catch {
      /* best effort */
    }
  }
  return { gatewayLogs: instances.map(logPath) };
}

interface Figures {
  inSent: number;
  inDelivered: number;
  inLost: string[];
  outConfirmed: number;
  outLost: string[];
  dupToPhone: string[];
}

function createdCounts(twilio: FakeTwilio): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of twilio.created) {
    const t = TOKEN_RE.exec(m.body)?.[1];
    if (t) counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  return counts;
}

function figures(twilio: FakeTwilio): Figures {
  const accepted = [...inbound.values()].filter((r) => r.outcome === "accepted");
  const created = createdCounts(twilio);
  const confirmed = [...outbound.values()].filter((r) => r.state === "confirmed");
  return {
    inSent: accepted.length,
    inDelivered: accepted.filter((r) => delivered.has(r.token)).length,
    inLost: accepted.filter((r) => !delivered.has(r.token)).map((r) => r.token),
    outConfirmed: confirmed.length,
    outLost: confirmed.filter((r) => !created.has(r.token) && !errorReplies.has(r.token)).map((r) => r.token),
    dupToPhone: [...created].filter(([, n]) => n > 1).map(([t]) => t),
  };
}

/** Resent stanzas written by the clients. */
function resendCount(): number {
  let n = 0;
  for (const r of outbound.values()) n += r.resendAts.length;
  return n;
}

/** Tokens first created at the fake Twilio only after their first resend was written. */
function recoveredByResend(): string[] {
  return [...outbound.values()].filter((r) => r.resendAts.length > 0 && (firstCreatedAt.get(r.token) ?? -1) > r.resendAts[0]!).map((r) => r.token);
}

/** The gateway SIGKILL this message was written just before (≤ 1 s) or during: XEP-0114 has no acks,
 * so Prosody counts a stanza as delivered once it is in the component's socket, and a process killed
 * before reading and storing it loses it. Only the instance holding the XMPP link has that socket: a
 * standby's SIGKILL is no such window. */
function killWindowOf(r: OutboundRecord): RestartRecord | undefined {
  return restarts.find((k) => k.kind === "gateway" && k.mode === "SIGKILL" && k.heldLink !== false && k.downAt - 1000 <= r.sentAt && r.sentAt <= (k.exitAt ?? k.downAt));
}

/** "gateway", or with several instances "gateway soak-2 (link holder)". */
const restartName = (r: RestartRecord): string => (MULTI && r.instance ? `${r.kind} ${r.instance}${r.heldLink ? " (link holder)" : ""}` : r.kind);

function nearbyRestarts(at: number): string {
  const near = restarts.filter((r) => r.downAt - 15_000 <= at && at <= (r.upAt ?? Date.now()) + 15_000);
  if (near.length === 0) return "no restart within 15 s";
  return near.map((r) => `${restartName(r)} ${r.mode} down ${rel(r.downAt)}..up ${r.upAt ? rel(r.upAt) : "?"}`).join("; ");
}

interface GatewayLog {
  /** set with several instances */
  inst?: string;
  lines: string[];
}

function gatewayLogs(): GatewayLog[] {
  return instances.map((i) => ({ ...(MULTI ? { inst: i.id } : {}), lines: i.gp.log().split("\n") }));
}

/** The last `max` lines naming `needle`, of every instance's log in time order. */
function grepLog(logs: GatewayLog[], needle: string, max = 6): string[] {
  const hits: { at: number; text: string }[] = [];
  for (const { inst, lines } of logs) {
    for (const l of lines) {
      if (!l.includes(needle)) continue;
      const tag = inst ? `[${inst}] ` : "";
      try {
        const o = JSON.parse(l) as { time?: number; level?: number; msg?: string; err?: unknown; reason?: unknown };
        hits.push({
          at: o.time ?? 0,
          text: `${o.time ? rel(o.time) : "?"} ${tag}L${o.level ?? "?"} ${o.msg ?? ""}${o.err ? ` err=${JSON.stringify(o.err).slice(0, 160)}` : ""}${o.reason ? ` reason=${String(o.reason)}` : ""}`,
        });
      } catch {
        hits.push({ at: 0, text: `${tag}${l.slice(0, 200)}` });
      }
    }
  }
  if (logs.length > 1) hits.sort((a, b) => a.at - b.at);
  return hits.slice(-max).map((h) => h.text);
}

async function redisFacts(): Promise<{ depth: string; records: Map<string, Record<string, string>> }> {
  const records = new Map<string, Record<string, string>>();
  const c = createClient({ url: redis.url, socket: { connectTimeout: 3000, reconnectStrategy: false } });
  c.on("error", () => undefined);
  try {
    await c.connect();
    const parts: string[] = [];
    for (const dir of ["to-xmpp", "outbox"]) {
      let len = 0;
      let pending = 0;
      for (let p = 0; p < 64; p++) {
        const k = `sb:v1:stream:${dir}:${p}`;
        if (!(await c.exists(k))) continue;
        len += await c.xLen(k);
        try {
          pending += (await c.xPending(k, "switchboard")).pending;
        } catch {
          /* no group */
        }
      }
      parts.push(`${dir}: ${len} entries, ${pending} pending`);
    }
    parts.push(`dead letters: ${(await c.exists("sb:v1:stream:dead")) ? await c.xLen("sb:v1:stream:dead") : 0}`);
    for await (const batch of c.scanIterator({ MATCH: "sb:v1:msg:*", COUNT: 500 })) {
      for (const key of Array.isArray(batch) ? batch : [batch]) {
        const h = await c.hGetAll(key);
        if (h.stanzaId) records.set(h.stanzaId, { key, ...h });
      }
    }
    return { depth: parts.join("; "), records };
  } catch (err) {
    return { depth: `could not read Redis: ${(err as Error).message}`, records };
  } finally {
    c.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------
// main

/**
 * A copy of src/ (with package.json, node_modules linked) the gateway runs from. startGatewayProcess
 * runs `node [nodeArgs] --import tsx src/main.ts` in the repository; nodeArgs naming another script
 * first make node run that one (the rest become its ignored argv).
 */
function snapshotNodeArgs(): string[] {
  if (process.env.SOAK_SNAPSHOT === "0") return [];
  const root = fileURLToPath(new URL("../", import.meta.url));
  const snap = join(OUT_DIR, "snapshot");
  cpSync(join(root, "src"), join(snap, "src"), { recursive: true });
  copyFileSync(join(root, "package.json"), join(snap, "package.json"));
  symlinkSync(join(root, "node_modules"), join(snap, "node_modules"), "dir");
  return ["--import", "tsx", join(snap, "src", "main.ts")];
}

async function main(): Promise<number> {
  say(`output dir ${OUT_DIR}; ${SOAK_SECONDS} s at ${RATE} msg/s, restarts every ${RESTART_MIN_S}-${RESTART_MAX_S} s, seed ${initialSeed}`);
  const nodeArgs = snapshotNodeArgs();
  if (nodeArgs.length > 0) say(`gateway runs from a snapshot of src/: ${nodeArgs[2]}`);
  redis = await createDurableRedis(join(OUT_DIR, "redis"));
  await redis.start();
  const [srv, twilio] = await Promise.all([
    startXmppServer({ kind: "prosody", componentDomain: DOMAIN, componentSecret: SECRET, users: users.map((u) => ({ username: u.name, password: u.password })) }),
    startFakeTwilio({ accounts: { [ACCOUNT_SID]: AUTH_TOKEN } }),
  ]);
  server = srv;
  const env = {
    SMS_PROVIDER: "twilio",
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: SECRET,
    REDIS_URL: redis.url,
    PUBLIC_URL,
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_URL: twilio.url,
    XMPP_RECONNECT_MIN_MS: "200",
    XMPP_RECONNECT_MAX_MS: "2000",
    LOG_LEVEL: "info",
    // The soak measures delivery, not the abuse limits: its users send faster than a person would.
    USER_MESSAGES_PER_MINUTE: "0",
    USER_SEGMENTS_PER_DAY: "0",
    BREAKER_SEGMENTS_PER_HOUR: "0",
  };
  for (const id of INSTANCE_IDS) {
    // Several: each its own port, journal (kept in the output dir) and log; the media directory is
    // shared, as deploying several behind one PUBLIC_URL requires.
    const own: Record<string, string> = MULTI ? { JOURNAL_DIR: join(OUT_DIR, id, "journal"), MEDIA_DIR: join(OUT_DIR, "media") } : {};
    instances.push({ id, gp: await startGatewayProcess({ ...env, INSTANCE_ID: id, ...own }, { nodeArgs }), up: false, restarting: false });
  }
  const logCopier = setInterval(() => copyLogs(), 30_000);
  let monitoring = true;
  const linkMonitor = (async () => {
    while (monitoring) {
      await pollLink().catch(() => undefined);
      await sleep(LINK_POLL_MS);
    }
  })();
  let code = 2;
  let trafficStarted = false;
  try {
    await Promise.all(instances.map((i) => startWithRetries(i, "first start")));
    if (MULTI) {
      const by = Date.now() + 20_000;
      while (!linkNow.connected) {
        if (Date.now() > by) throw new Error("no instance connected to the XMPP server within 20 s");
        await sleep(LINK_POLL_MS);
      }
    } else {
      await instances[0]!.gp.waitConnected(20_000);
    }
    for (const u of users) {
      const res = await instances[0]!.gp.admin("PUT", `/api/v1/users/${u.bare}`, { phone: u.phone });
      if (res.status >= 300) throw new Error(`linking ${u.bare} failed: ${res.status} ${JSON.stringify(res.json)}`);
    }
    await Promise.all(users.map((u) => ensureOnline(u)));
    if (!users.every((u) => u.client?.isOnline())) throw new Error("not every XMPP user could log in");
    const gateways = MULTI ? `gateways ${instances.map((i) => `${i.id} ${i.gp.url}`).join(", ")} (${linkNow.holder ?? "?"} holds the XMPP link)` : `gateway ${instances[0]!.gp.url}`;
    say(`ready: redis ${redis.url} (AOF, appendfsync always), prosody c2s ${server.c2sPort}, fake Twilio ${twilio.url}, ${gateways}`);

    t0 = Date.now();
    trafficStarted = true;
    event("start", { seconds: SOAK_SECONDS, rate: RATE, seed: initialSeed });
    const end = t0 + SOAK_SECONDS * 1000;
    let running = true;

    // Also during the drain: clients stay online and keep scanning, callbacks follow every create,
    // and unanswered messages are resent.
    const keeper = setInterval(() => {
      for (const u of users) {
        scan(u);
        void ensureOnline(u);
      }
      pollCreated(twilio);
      resendDue();
    }, 250);

    const progress = setInterval(() => {
      const f = figures(twilio);
      say(
        `in ${f.inDelivered}/${f.inSent} delivered, out ${createdCounts(twilio).size} created / ${f.outConfirmed} confirmed / ${receipts.size} receipted, resends ${resendCount()}, restarts ${restarts.length}, same-id repeats ${sameIdRepeats}${MULTI ? `, link ${linkNow.holder ?? "held by none"}${linkNow.holder && !linkNow.connected ? " (not connected)" : ""}, up ${instances.filter((i) => i.up).length}/${INSTANCES}` : ""}`,
      );
    }, 15_000);

    const traffic = (async () => {
      const interval = 1000 / RATE;
      let next = Date.now();
      while (running && Date.now() < end) {
        track(random() < 0.5 ? postInbound() : sendOutbound());
        next += interval;
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait);
      }
      trafficStoppedAt = Date.now();
    })();

    const chaos = (async () => {
      for (;;) {
        const at = Date.now() + between(RESTART_MIN_S, RESTART_MAX_S) * 1000;
        if (at >= end) return;
        while (Date.now() < at) {
          throwIfBackgroundFailed();
          await sleep(Math.min(500, at - Date.now()));
        }
        await restartOne();
      }
    })();

    try {
      await Promise.all([traffic, chaos]);
      // Every instance back before the drain (a gateway restart with several runs on its own).
      await Promise.all([...restartsInflight]);
      throwIfBackgroundFailed();
    } finally {
      running = false;
    }
    say(`traffic stopped; ${inflight.size} sends/posts still in flight`);
    event("traffic-stopped");
    await Promise.allSettled([...inflight]);

    // Drain: until everything is accounted for (then 5 s more for late repeats), or nothing changed for
    // DRAIN_QUIET_S, or DRAIN_SECONDS passed. Accounted for: every inbound delivered; every confirmed
    // outbound answered (receipt or error reply) or done resending (its last resend RESEND_AFTER_MS
    // old); no status callback or resend in flight.
    say("draining");
    const drainStart = Date.now();
    let lastSig = "";
    let lastChange = Date.now();
    for (;;) {
      for (const u of users) scan(u);
      const f = figures(twilio);
      const sig = [
        delivered.size,
        twilio.created.length,
        [...errorReplies.values()].reduce((n, l) => n + l.length, 0),
        sameIdRepeats,
        receipts.size,
        resendCount(),
        callbacks.filter((c) => c.outcome !== "pending").length,
      ].join("/");
      if (sig !== lastSig) {
        lastSig = sig;
        lastChange = Date.now();
      }
      const now = Date.now();
      const confirmedOpen = [...outbound.values()].filter(
        (r) => r.state === "confirmed" && unanswered(r) && (r.resending || r.resendAts.length < MAX_RESENDS || now - r.lastWriteAt < RESEND_AFTER_MS),
      ).length;
      const allDone = f.inLost.length === 0 && confirmedOpen === 0 && callbackInflight.size === 0 && resendInflight.size === 0 && createdSeen === twilio.created.length;
      const quiet = Date.now() - lastChange;
      if (allDone && quiet >= 5000) break;
      if (quiet >= DRAIN_QUIET_S * 1000) break;
      if (Date.now() - drainStart >= DRAIN_SECONDS * 1000) {
        harnessProblems.push(`drain bound of ${DRAIN_SECONDS} s reached while counts were still changing`);
        break;
      }
      await sleep(1000);
    }
    say(`drained in ${((Date.now() - drainStart) / 1000).toFixed(0)} s`);
    clearInterval(keeper);
    clearInterval(progress);
    await Promise.race([Promise.allSettled([...resendInflight]), sleep(2 * PING_TIMEOUT_MS + 1000)]);
    for (const u of users) scan(u);

    code = await report(twilio);
  } catch (err) {
    say(`harness failure: ${(err as Error).stack ?? String(err)}`);
    event("harness-failure", { err: String(err) });
    code = 2;
    if (trafficStarted) {
      say("partial figures up to the failure (no drain; lost counts include what was still on its way):");
      for (const u of users) scan(u);
      await report(twilio).catch((e: unknown) => say(`could not report: ${String(e)}`));
    }
  } finally {
    clearInterval(logCopier);
    monitoring = false;
    await linkMonitor;
    await Promise.allSettled(users.map((u) => u.client?.stop() ?? Promise.resolve()));
    // A restart still on its way (after a failure) would start its gateway after the stop below.
    await Promise.race([Promise.allSettled([...restartsInflight]), sleep(60_000)]);
    await Promise.allSettled(instances.filter((i) => i.gp.running()).map((i) => i.gp.terminate(15_000)));
    const { gatewayLogs } = copyLogs();
    await Promise.allSettled([twilio.stop(), server.stop(), redis.stop(5000)]);
    say(`${MULTI ? "gateway logs" : "gateway log"}: ${gatewayLogs.join(", ")}`);
    say(`soak event log: ${EVENTS}; Prosody log: ${join(OUT_DIR, "prosody.log")}; Redis log + AOF: ${redis.dir}`);
  }
  return code;
}

/** The SIGKILL whose XEP-0114 window a message fell in, in words. */
const killName = (k: RestartRecord): string => (MULTI ? `the SIGKILL of ${k.instance ?? "?"} (the XMPP link holder)` : "the gateway SIGKILL");

/** With several instances: restarts per instance, link takeovers, and the longest gaps. */
function severalRows(): [string, string | number][] {
  const end = trafficStoppedAt ?? Date.now();
  const per = INSTANCE_IDS.map((id) => {
    const mine = restarts.filter((r) => r.kind === "gateway" && r.instance === id);
    const n = (mode: RestartRecord["mode"], holder?: boolean) => mine.filter((r) => r.mode === mode && (holder === undefined || r.heldLink === holder)).length;
    return `${id} ${n("SIGKILL")}/${n("SIGTERM")} (${n("SIGKILL", true)}/${n("SIGTERM", true)})`;
  });
  const takeovers = linkTakeovers();
  const holderStops = (mode: RestartRecord["mode"]) => {
    const ms = restarts.filter((r) => r.kind === "gateway" && r.mode === mode && r.heldLink).map((r) => takeoverAfter(r));
    const known = ms.filter((x): x is number => x !== undefined);
    const worst = known.length ? `, longest ${(Math.max(...known) / 1000).toFixed(1)} s, median ${(median(known) / 1000).toFixed(1)} s` : "";
    return `${ms.length}${worst}${known.length < ms.length ? ` (${ms.length - known.length} never seen connected again)` : ""}`;
  };
  const down = longestLinkStretch((l) => !l.connected, t0, end);
  // The lease says this instance delivers, yet it is not connected: nobody else may connect meanwhile.
  const heldDown = longestLinkStretch((l) => l.holder !== undefined && !l.connected, t0, end);
  const gap = longestInboundGap(t0, end);
  return [
    [`SEVERAL INSTANCES (${INSTANCES}${ALLOW_ALL_DOWN ? ", all may be down at once" : ", at least one always up"})`, ""],
    ["  gateway restarts per instance: SIGKILL / SIGTERM (of them, while holding the XMPP link)", per.join(", ")],
    ["  XMPP link takeovers (another fencing token connected)", `${takeovers.length} (to another instance: ${takeovers.filter((t) => t.from !== t.to).length})`],
    ["    …after a SIGKILL of the holder: count, time to a connected new holder", holderStops("SIGKILL")],
    ["    …after a SIGTERM of the holder (hand-over)", holderStops("SIGTERM")],
    ["  longest time with no instance connected to XMPP", `${(down.ms / 1000).toFixed(1)} s (from ${rel(down.start)}; ${nearbyRestarts(down.start)})`],
    ["  longest time the link lease was held by an instance not connected", heldDown.ms > 0 ? `${(heldDown.ms / 1000).toFixed(1)} s (from ${rel(heldDown.start)})` : "never seen"],
    ["  longest gap in inbound XMPP delivery", `${(gap.ms / 1000).toFixed(1)} s (from ${rel(gap.start)}; ${nearbyRestarts(gap.start)})`],
    ["  POSTs moved on to another instance (refused, reset, 5xx)", postsMovedOn],
    ["  polls where two instances said they held the link", twoHolderPolls],
  ];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

/** Longest time between `from` and `to` in which no inbound text reached an XMPP client for the first time. */
function longestInboundGap(from: number, to: number): { ms: number; start: number } {
  const ats = [...delivered.values()]
    .map((d) => d.firstAt)
    .filter((t) => t >= from && t <= to)
    .sort((a, b) => a - b);
  let best = { ms: 0, start: from };
  let last = from;
  for (const at of [...ats, to]) {
    if (at - last > best.ms) best = { ms: at - last, start: last };
    last = at;
  }
  return best;
}

async function report(twilio: FakeTwilio): Promise<number> {
  const f = figures(twilio);
  const created = createdCounts(twilio);
  const ins = [...inbound.values()];
  const outs = [...outbound.values()];
  const neverAccepted = ins.filter((r) => r.outcome === "never-accepted");
  const rejected = ins.filter((r) => r.outcome === "rejected");
  const deliveredNotAccepted = ins.filter((r) => r.outcome !== "accepted" && delivered.has(r.token)).length;
  const confirmed = outs.filter((r) => r.state === "confirmed");
  const unconfirmed = outs.filter((r) => r.state === "unconfirmed");
  const notWritten = outs.filter((r) => r.state === "not-written").length;
  const errKinds = (kind: ErrorKind, among: OutboundRecord[]) => among.filter((r) => !created.has(r.token) && errorReplies.get(r.token)?.some((e) => e.kind === kind)).length;
  const contradictions = outs.filter((r) => created.has(r.token) && errorReplies.get(r.token)?.some((e) => e.kind === "not-sent" || e.kind === "server-bounce"));
  const createdUnknown = [...created.keys()].filter((t) => !outbound.has(t)).length;
  const byKind = (kind: RestartRecord["kind"], mode: RestartRecord["mode"]) => restarts.filter((r) => r.kind === kind && r.mode === mode).length;
  const kills = restarts.filter((r) => r.mode === "SIGKILL").length;

  const resent = outs.filter((r) => r.resendAts.length > 0);
  const recovered = recoveredByResend();
  const errAfterResend = confirmed.filter((r) => !created.has(r.token) && r.resendAts.length > 0 && (errorReplies.get(r.token)?.[0]?.at ?? 0) > r.resendAts[0]!).length;
  const cbBy = (o: CallbackRecord["outcome"]) => callbacks.filter((c) => c.outcome === o).length;
  const rows: [string, string | number][] = [
    ["duration / rate", `${SOAK_SECONDS} s at ${RATE} msg/s (seed ${initialSeed})`],
    ["INBOUND (phone → XMPP)", ""],
    ["  sent (POST answered 200)", f.inSent],
    ["  delivered to XMPP (unique tokens)", f.inDelivered],
    ["  LOST", f.inLost.length],
    ["  same-id repeats toward XMPP", sameIdRepeats],
    ["  different-id duplicates (not allowed)", differentIdDuplicates],
    ["  delivered to the wrong user", misrouted],
    ["  never accepted (retries exhausted)", neverAccepted.length],
    ["    …of which delivered anyway", deliveredNotAccepted],
    ["  rejected with 4xx", rejected.length],
    ["  POSTs retried (attempts > 1)", ins.filter((r) => r.attempts > 1).length],
    ["OUTBOUND (XMPP → phone)", ""],
    ["  sent (accepted by the XMPP server, ping-confirmed)", confirmed.length],
    ["  created at the fake Twilio (unique tokens)", created.size],
    ["    …of confirmed messages", confirmed.filter((r) => created.has(r.token)).length],
    ["  DUPLICATED TO A PHONE (created > 1)", f.dupToPhone.length],
    ["  reported, not created: Prosody bounce (component away)", errKinds("server-bounce", confirmed)],
    ["  reported, not created: gateway 'not sent' error", errKinds("not-sent", confirmed)],
    ["  reported: 'may or may not have gone out' (not created)", errKinds("maybe-sent", confirmed)],
    ["  reported 'may or may not' but created", outs.filter((r) => created.has(r.token) && errorReplies.get(r.token)?.some((e) => e.kind === "maybe-sent")).length],
    ["  …of the reported, not created: first error reply after a resend", errAfterResend],
    ["  receipts received (unique tokens)", receipts.size],
    ["    …repeated receipts / receipts for no token of that user", `${[...receipts.values()].reduce((n, r) => n + r.count - 1, 0)} / ${receiptsUnmatched}`],
    ["    …created, confirmed, no error reply, but no receipt", confirmed.filter((r) => created.has(r.token) && unanswered(r)).length],
    ["  status callbacks posted: 200 / never accepted / 4xx", `${cbBy("accepted")} / ${cbBy("never-accepted")} / ${cbBy("rejected")}${cbBy("pending") ? ` (${cbBy("pending")} still pending)` : ""}`],
    ["  resends by the client (stanzas written; ping-confirmed)", `${resendCount()} (${outs.reduce((n, r) => n + r.resendsConfirmed, 0)})`],
    ["    …messages resent (once / twice / 3 times)", `${resent.length} (${[1, 2, 3].map((k) => resent.filter((r) => r.resendAts.length === k).length).join(" / ")})`],
    ["  recovered by a resend (first created after the first resend)", recovered.length],
    ["  LOST (confirmed, not created, no error reply, after resends)", f.outLost.length],
    ["  contradictions (error says not sent, but created)", contradictions.length],
    ["  unconfirmed (no ping answer: Prosody restarting)", unconfirmed.length],
    [
      "    …created / reported / vanished",
      `${unconfirmed.filter((r) => created.has(r.token)).length} / ${unconfirmed.filter((r) => !created.has(r.token) && errorReplies.has(r.token)).length} / ${unconfirmed.filter((r) => !created.has(r.token) && !errorReplies.has(r.token)).length}`,
    ],
    ["  not written (send failed) / client offline (skipped)", `${notWritten} / ${outboundNotWrittenOffline}`],
    ["  created with an unknown token", createdUnknown],
    ["RESTARTS", `${restarts.length} (${kills} SIGKILL)`],
    ["  gateway SIGKILL / SIGTERM", `${byKind("gateway", "SIGKILL")} / ${byKind("gateway", "SIGTERM")}`],
    ["  redis SIGKILL / SIGTERM", `${byKind("redis", "SIGKILL")} / ${byKind("redis", "SIGTERM")}`],
    ["  prosody restart (SIGTERM, data kept)", byKind("prosody", "SIGTERM")],
    ["  XMPP client logins", users.map((u) => `${u.name} ${u.logins}`).join(", ")],
    ...(MULTI ? severalRows() : []),
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  const lines = ["", "=".repeat(width + 30), ...rows.map(([k, v]) => `${k.padEnd(width)}${v}`), "=".repeat(width + 30)];

  lines.push("", "restarts:");
  for (const [i, r] of restarts.entries()) {
    const takeover = MULTI && r.heldLink ? takeoverAfter(r) : undefined;
    const link = takeover !== undefined ? `; link connected again after ${(takeover / 1000).toFixed(1)} s` : "";
    lines.push(`  #${i + 1} ${rel(r.downAt)} ${restartName(r)} ${r.mode}, up ${r.upAt ? rel(r.upAt) : "?"}${r.note ? ` (${r.note})` : ""}${link}`);
  }

  const facts = await redisFacts();
  lines.push("", `Redis at the end: ${facts.depth}`);
  try {
    const dl = await (instances.find((i) => i.up) ?? instances[0]!).gp.admin("GET", "/api/v1/dead-letters");
    const list = (dl.json as { deadLetters?: { reason?: string; queue?: string }[] } | undefined)?.deadLetters ?? [];
    lines.push(`dead letters (admin API): ${list.length}${list.length ? ` — ${[...new Set(list.map((d) => `${d.queue}: ${d.reason}`))].slice(0, 5).join(" | ")}` : ""}`);
  } catch (err) {
    lines.push(`dead letters: could not ask (${(err as Error).message})`);
  }

  const log = gatewayLogs();
  if (f.inLost.length > 0) {
    lines.push("", `lost inbound (${f.inLost.length}; first 15):`);
    for (const t of f.inLost.slice(0, 15)) {
      const r = inbound.get(t)!;
      lines.push(`  ${t} sid ${r.sid} → ${r.user}: accepted ${rel(r.acceptedAt ?? 0)} after ${r.attempts} POST(s); ${nearbyRestarts(r.acceptedAt ?? 0)}`);
      for (const l of grepLog(log, r.sid)) lines.push(`      ${l}`);
    }
  }
  if (f.outLost.length > 0) {
    lines.push("", `lost outbound (${f.outLost.length}; first 15):`);
    for (const t of f.outLost.slice(0, 15)) {
      const r = outbound.get(t)!;
      const rec = facts.records.get(t);
      const k = killWindowOf(r);
      const d = k ? k.downAt - r.sentAt : 0;
      const kw = k ? `written ${Math.abs(d)} ms ${d >= 0 ? "before" : "after"} ${killName(k)} was sent, ${(k.exitAt ?? k.downAt) - r.sentAt} ms before the process was gone (XEP-0114 window); ` : "";
      const rs = r.resendAts.length ? `resent ${r.resendAts.length}× (${r.resendAts.map(rel).join(", ")}; ${r.resendsConfirmed} ping-confirmed)` : "never resent";
      lines.push(
        `  ${t} ${r.user} → ${r.to}: written ${rel(r.sentAt)}, confirmed ${rel(r.confirmedAt ?? 0)}; ${rs}; ${kw}${nearbyRestarts(r.confirmedAt ?? 0)}; record: ${rec ? `${rec.key} status=${rec.status} attempt=${rec.attempt ?? "-"} attempts=${rec.attempts ?? 0}` : "none in Redis"}`,
      );
      if (rec) for (const l of grepLog(log, (rec.key ?? "").split(":").pop()!)) lines.push(`      ${l}`);
    }
  }
  if (recovered.length > 0) {
    lines.push("", `recovered by a resend (${recovered.length}; first 15):`);
    for (const t of recovered.slice(0, 15)) {
      const r = outbound.get(t)!;
      const k = killWindowOf(r);
      const d = k ? k.downAt - r.sentAt : 0;
      const kw = k ? `written ${Math.abs(d)} ms ${d >= 0 ? "before" : "after"} ${killName(k)} was sent (XEP-0114 window)` : `not in a ${MULTI ? "link holder's " : "gateway "}SIGKILL window`;
      lines.push(`  ${t} ${r.user} → ${r.to}: written ${rel(r.sentAt)}, first resent ${rel(r.resendAts[0]!)}, created ${rel(firstCreatedAt.get(t)!)}; ${kw}; ${nearbyRestarts(r.sentAt)}`);
    }
  }
  if (f.dupToPhone.length > 0) {
    lines.push("", `duplicated to a phone (${f.dupToPhone.length}; first 15):`);
    for (const t of f.dupToPhone.slice(0, 15)) {
      const r = outbound.get(t);
      const at = twilio.created.filter((m) => m.body.includes(t)).map((m) => `${m.sid} ${m.date_created}`);
      lines.push(`  ${t}: created ${created.get(t)}× (${at.join(", ")}); sent ${r ? rel(r.sentAt) : "?"}; ${r ? nearbyRestarts(r.sentAt) : ""}`);
      const rec = facts.records.get(t);
      if (rec) for (const l of grepLog(log, (rec.key ?? "").split(":").pop()!, 10)) lines.push(`      ${l}`);
    }
  }
  if (contradictions.length > 0) {
    lines.push("", "contradictions (first 10):");
    for (const r of contradictions.slice(0, 10))
      lines.push(
        `  ${r.token}: ${errorReplies
          .get(r.token)!
          .map((e) => `${e.kind} "${e.text}"`)
          .join("; ")}`,
      );
  }
  if (differentIdDuplicates > 0) lines.push("", `different-id duplicates: see "different-id-duplicate" in ${EVENTS}`);
  const errTexts = new Map<string, number>();
  for (const l of errorReplies.values())
    for (const e of l) errTexts.set(`${e.kind}: ${e.condition}: ${e.text.slice(0, 140)}`, (errTexts.get(`${e.kind}: ${e.condition}: ${e.text.slice(0, 140)}`) ?? 0) + 1);
  if (errTexts.size > 0) {
    lines.push("", "error replies seen:");
    for (const [k, n] of [...errTexts].sort((a, b) => b[1] - a[1]).slice(0, 10)) lines.push(`  ${n}× ${k}`);
  }
  if (harnessProblems.length > 0) lines.push("", "harness notes:", ...harnessProblems.map((p) => `  ${p}`));

  // Every loss fails the run, one at a gateway SIGKILL included: the careful client resends what got
  // no receipt, so even a stanza XEP-0114 dropped at the kill must reach the phone in the end.
  const failed = f.inLost.length > 0 || f.outLost.length > 0 || f.dupToPhone.length > 0;
  lines.push(
    "",
    failed
      ? `RESULT: FAIL — lost ${f.inLost.length} inbound, ${f.outLost.length} outbound; ${f.dupToPhone.length} duplicated to a phone`
      : `RESULT: PASS — nothing lost, nothing duplicated to a phone (${resendCount()} resends, ${recovered.length} messages recovered by one)`,
    "",
  );
  const text = lines.join("\n");
  process.stdout.write(text + "\n");
  writeFileSync(join(OUT_DIR, "report.txt"), text);
  writeFileSync(
    join(OUT_DIR, "tokens.json"),
    JSON.stringify(
      {
        inbound: ins,
        outbound: outs,
        errorReplies: Object.fromEntries(errorReplies),
        created: Object.fromEntries(created),
        firstCreatedAt: Object.fromEntries(firstCreatedAt),
        receipts: Object.fromEntries(receipts),
        callbacks,
        restarts,
      },
      null,
      1,
    ),
  );
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);
