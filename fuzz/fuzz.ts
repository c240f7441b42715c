// Long fuzz run (issue 6, "Hostile input"): ≥ 100,000 generated hostile cases against one gateway,
// in-process, on real servers, then a summary table. Not part of `npm test`.
//
//   npm run fuzz                         # 100,000 cases (FUZZ_CASES), Prosody (XMPP_SERVER=ejabberd for ejabberd)
//   FUZZ_CASES=20000 npm run fuzz        # a shorter try
//   FUZZ_SEED=42 npm run fuzz            # reproduce a run (the seed is printed at the start)
//
// Set-up: Redis and Prosody (test fixtures), the fake Twilio (test/fakes) as TWILIO_API_URL, a local
// webhook receiver, and the gateway itself in this process (createGateway, SMS_PROVIDER=twilio so the
// Twilio signature check is real). One XMPP user, alice, is linked to a number and allowed to use a
// webhook target.
//
// Cases (test/support/hostile*.ts), drawn with fast-check in batches:
//   twilio-sms / twilio-status  signed (mostly), mutated Twilio forms: fields missing, repeated, added,
//                               junk; huge NumMedia; bodies up to and over HTTP_BODY_LIMIT   (inject)
//   admin / message-in          any method, hostile paths, tokens and JSON bodies          (inject)
//   body-limit                  a body just over HTTP_BODY_LIMIT on every route taking one (inject)
//   stanza-direct               a parsed stanza handed to the component as if the server had sent
//                               it, with text no server lets through; answers go out through Prosody
//   stanza-server               a stanza sent by alice through Prosody
//   pure                        address parsing, segment counting, signature checks, XML rendering
// Every answer is checked as it comes (HTTP: 2xx or a 4xx problem, never 5xx; IQ get/set: exactly one
// reply; no answer to an error; no internal-server-error). Every FUZZ_CHECK_EVERY cases (default 2000):
// /healthz and /readyz, an XMPP ping through Prosody, a canary SMS each way (Twilio → alice, alice →
// Twilio) that must arrive, the component link must not have dropped, and RSS is sampled (after a GC).
//
// Fails (exit 1) on: any 5xx or malformed error answer, any IQ unanswered / answered twice / answered
// internal-server-error, an answered error, a dropped component link, a failed canary or health check,
// an unhandled rejection or uncaught exception, an error-level log line, an event-loop stall over
// FUZZ_MAX_STALL_MS (default 5000), or memory that keeps growing: the last quarter's average RSS above
// 1.5 × the first quarter's + 64 MB. Exit 2: the harness itself could not run.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import fc from "fast-check";
import { createGateway, type Gateway } from "../src/app/gateway.js";
import { loadConfig } from "../src/config.js";
import { normalizeNumber, parseContactLocalpart, parseJid, parseUserBareJid, senderLocalpart, toE164 } from "../src/core/model/addresses.js";
import { countSegments } from "../src/core/model/segments.js";
import { createLogger } from "../src/logger.js";
import { verifySignature } from "../src/webhooks/verify.js";
import { deliveryStanza } from "../src/xmpp/stanzas.js";
import { xmlSafe } from "../src/xmpp/stream-guard.js";
import { inboundSmsParams, signTwilioRequest, startFakeTwilio, type FakeTwilio } from "../test/fakes/fake-twilio.js";
import { anyText, contactLocal, encodeForm, hostileText, jidLike, phoneLike, rawStanza, serverStanza } from "../test/support/hostile.js";
import { checkOutcome, httpCases, send, type HttpCase, type HttpFuzzContext } from "../test/support/hostile-http.js";
import { startRedis, type RedisServer } from "../test/support/redis.js";
import { pingGateway, StanzaFuzzer } from "../test/support/stanza-fuzz.js";
import { connectClient, xml, type TestClient } from "../test/support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../test/support/xmpp-server.js";

const TOTAL = Number(process.env.FUZZ_CASES ?? 100_000);
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CHECK_EVERY = Number(process.env.FUZZ_CHECK_EVERY ?? 2000);
const MAX_STALL_MS = Number(process.env.FUZZ_MAX_STALL_MS ?? 5000);
const HTTP_CONCURRENCY = 8;
const DOMAIN = "sms.localhost";
const SID = `AC${"3".repeat(32)}`;
const TOKEN = "fuzz-auth-token";
const PUBLIC = "https://gw.example.test";
const ADMIN_TOKEN = randomBytes(16).toString("hex");
const ALICE_NUMBER = "+15550001111";
const CONTACT = "+15552223333";
/** Where alice's canary texts go: a number the generated cases never text from (so never opted out by a STOP). */
const CANARY_CONTACT = "+15550009876";

type Category = HttpCase["category"] | "stanza-direct" | "stanza-server" | "pure";
/** Share of each category, per 1000 cases. */
const MIX: [Category, number][] = [
  ["twilio-sms", 220],
  ["twilio-status", 90],
  ["admin", 150],
  ["message-in", 130],
  ["body-limit", 5],
  ["stanza-direct", 250],
  ["stanza-server", 60],
  ["pure", 95],
];

// ---------------------------------------------------------------------------------------------
// bookkeeping

const failures: string[] = [];
const fail = (what: string) => {
  if (failures.length < 200) failures.push(what);
  else if (failures.length === 200) failures.push("… (more failures not shown)");
};
const cases = new Map<Category, number>();
const statuses = new Map<Category, Map<number, number>>();
const logCounts = new Map<string, number>();
const errorLogs: string[] = [];
const rss: { at: number; mb: number }[] = [];
const unhandled: string[] = [];
let stalls = 0;
/** Where the time went: checkpoints (health, ping, canaries) and the slowest canary. */
let checkpointMs = 0;
let slowestCanaryMs = 0;

process.on("unhandledRejection", (e) => void unhandled.push(`unhandledRejection: ${String((e as Error)?.stack ?? e).slice(0, 500)}`));
process.on("uncaughtException", (e) => void unhandled.push(`uncaughtException: ${String(e?.stack ?? e).slice(0, 500)}`));

/** A pino destination that counts lines by level and message, keeping the error-level ones. */
const logSink = {
  write(line: string): void {
    const m = /"level":(\d+).*"msg":"((?:[^"\\]|\\.)*)"/.exec(line);
    if (!m) return;
    const level = Number(m[1]);
    const key = `${level >= 50 ? "ERROR" : "warn "} ${m[2]!.slice(0, 90)}`;
    logCounts.set(key, (logCounts.get(key) ?? 0) + 1);
    if (level >= 50 && errorLogs.length < 20) errorLogs.push(line.slice(0, 1500));
  },
};

const gc = (globalThis as { gc?: () => void }).gc;
function sampleRss(): number {
  gc?.();
  const mb = process.memoryUsage().rss / 1024 / 1024;
  rss.push({ at: Date.now(), mb });
  return mb;
}

// ---------------------------------------------------------------------------------------------
// set-up

let redis: RedisServer | undefined;
let server: XmppServer | undefined;
let twilio: FakeTwilio | undefined;
let sink: Server | undefined;
let gateway: Gateway | undefined;
let alice: TestClient | undefined;
const dirs: string[] = [];

async function setUp(): Promise<{ ctx: HttpFuzzContext; webhookToken: () => string }> {
  [redis, server, twilio] = await Promise.all([
    startRedis(),
    startXmppServer({ componentDomain: DOMAIN, componentSecret: "fuzz-secret", users: [{ username: "alice", password: "alice-pw" }] }),
    startFakeTwilio({ accounts: { [SID]: TOKEN } }),
  ]);
  // A webhook receiver: mostly 200 with a reply (sometimes a large one), some 204, rare 4xx/5xx.
  let hits = 0;
  sink = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      hits++;
      if (hits % 50 === 0) return void res.writeHead(500).end("oops");
      if (hits % 37 === 0) return void res.writeHead(400).end("no \u0001 thanks \u202e");
      if (hits % 5 === 0) return void res.writeHead(204).end();
      const reply = hits % 11 === 0 ? "r\u0000\ufffe".repeat(30_000) : `ack ${hits} \u0007`;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ reply }));
    });
  });
  await new Promise<void>((r) => sink!.listen(0, "127.0.0.1", r));
  const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/hook`;

  const journal = mkdtempSync(join(tmpdir(), "sb-fuzz-journal-"));
  const media = mkdtempSync(join(tmpdir(), "sb-fuzz-media-"));
  dirs.push(journal, media);
  const config = loadConfig({
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: DOMAIN,
    XMPP_SECRET: "fuzz-secret",
    REDIS_URL: redis.url,
    HTTP_PORT: "0",
    PUBLIC_URL: PUBLIC,
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: TOKEN,
    TWILIO_API_URL: twilio.url,
    ADMIN_TOKEN,
    SECRETS_KEY: randomBytes(32).toString("base64"),
    WEBHOOK_ALLOW_PRIVATE: "true",
    WEBHOOK_DEADLINE_MS: "5000",
    WEBHOOK_TIMEOUT_MS: "2000",
    OUTBOUND_DEADLINE_MS: "5000",
    OUTBOUND_RETRY_BASE_MS: "100",
    MEDIA_FETCH_TIMEOUT_MS: "2000",
    JOURNAL_DIR: journal,
    MEDIA_DIR: media,
    LOG_LEVEL: "warn",
    // The fuzz sends far more than any person: the per-user and gateway-wide limits are off (their
    // refusals are 4xx anyway), and failed admin tokens must not lock the harness out.
    USER_MESSAGES_PER_MINUTE: "0",
    USER_SEGMENTS_PER_DAY: "0",
    BREAKER_SEGMENTS_PER_HOUR: "0",
    WEBHOOK_IN_PER_MINUTE: "0",
    ADMIN_AUTH_FAILURES_PER_MINUTE: "1000000",
  });
  gateway = await createGateway(config, createLogger("warn", logSink), { onFatal: (m) => fail(`fatal: ${m}`) });
  await gateway.start({ listen: false });
  const end = Date.now() + 15_000;
  while (!gateway.xmppState().online) {
    if (Date.now() > end) throw new Error(`the component did not come online: ${JSON.stringify(gateway.xmppState())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await admin("PUT", "/api/v1/users/alice@localhost", { phone: ALICE_NUMBER });
  const hook = await admin("PUT", "/api/v1/webhooks/bot", { url: sinkUrl, allow: ["alice@localhost"] });
  if (hook.status !== 201) throw new Error(`could not create the webhook target: ${hook.status} ${hook.body}`);
  let token = (JSON.parse(hook.body) as { token: string }).token;
  const webhookToken = () => token;
  alice = await connectClient({ server, username: "alice", password: "alice-pw", resource: "fuzz" });
  const ctx: HttpFuzzContext = {
    publicUrl: PUBLIC,
    twilioToken: TOKEN,
    accountSid: SID,
    // Media the fake serves (re-hosted at once), one type the gateway refuses, and one missing item
    // (404: retried with pauses, so it is rare).
    mediaUrls: [
      { url: twilio.addMedia({ accountSid: SID, bytes: Buffer.from("\x89PNG\r\n\x1a\nfuzz"), contentType: "image/png" }).url, contentType: "image/png" },
      { url: twilio.addMedia({ accountSid: SID, bytes: Buffer.from("BEGIN:VCARD\r\nEND:VCARD\r\n"), contentType: "text/vcard" }).url, contentType: "text/vcard" },
      { url: twilio.addMedia({ accountSid: SID, bytes: Buffer.from("MZ"), contentType: "application/x-msdownload" }).url, contentType: "application/x-msdownload" },
      { url: twilio.addMedia({ accountSid: SID, bytes: Buffer.from("\x89PNG"), contentType: "image/png", redirect: false }).url, contentType: "image/png" },
      ...Array.from({ length: 16 }, () => ({ url: twilio!.addMedia({ accountSid: SID, bytes: Buffer.from("GIF89a"), contentType: "image/gif" }).url, contentType: "image/gif" })),
      { url: `${twilio.url}/2010-04-01/Accounts/${SID}/Messages/MMnone/Media/MEnone`, contentType: "image/jpeg" },
    ],
    adminToken: ADMIN_TOKEN,
    userNumber: ALICE_NUMBER,
    userJid: "alice@localhost",
    webhookName: "bot",
    webhookToken,
    webhookUrl: sinkUrl,
    bodyLimit: config.HTTP_BODY_LIMIT,
  };
  // keep the token current if a generated admin request rotated it
  refreshToken = async () => {
    const r = await admin("PUT", "/api/v1/webhooks/bot", { url: sinkUrl, allow: ["alice@localhost"] });
    if (r.status === 201) token = (JSON.parse(r.body) as { token: string }).token;
  };
  return { ctx, webhookToken };
}
let refreshToken = async () => {};

async function admin(method: "GET" | "PUT" | "POST" | "DELETE", url: string, body?: unknown) {
  const res = await gateway!.http.inject({
    method,
    url,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  return { status: res.statusCode, body: res.body };
}

async function tearDown(): Promise<void> {
  await alice?.stop().catch(() => undefined);
  await gateway?.stop().catch(() => undefined);
  await new Promise<void>((r) => (sink ? sink.close(() => r()) : r()));
  await Promise.allSettled([twilio?.stop(), server?.stop(), redis?.stop()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// the pure category: the same properties as the unit tests, at volume

const pureCase = fc.oneof(
  fc.tuple(fc.constant("addr" as const), fc.oneof(contactLocal, phoneLike, jidLike, hostileText(60))),
  fc.tuple(fc.constant("seg" as const), anyText(1700)),
  fc.tuple(fc.constant("sig" as const), hostileText(40)),
  fc.tuple(fc.constant("xml" as const), anyText(3000)),
);

function runPure([kind, s]: [string, string]): void {
  if (kind === "addr") {
    try {
      const a = parseContactLocalpart(s);
      if (a.kind === "phone" && parseContactLocalpart(a.e164).kind !== "phone") fail(`pure: ${JSON.stringify(s)} does not read back`);
    } catch (err) {
      if ((err as Error).name !== "GatewayError") fail(`pure: parseContactLocalpart(${JSON.stringify(s.slice(0, 80))}) threw ${String(err)}`);
    }
    const e = toE164(s);
    if (e !== undefined && toE164(e) !== e) fail(`pure: toE164 not idempotent on ${JSON.stringify(s.slice(0, 80))}`);
    const n = normalizeNumber(s, "US");
    if (n !== undefined && normalizeNumber(n, "US") !== n) fail(`pure: normalizeNumber not idempotent on ${JSON.stringify(s.slice(0, 80))}`);
    const b = parseUserBareJid(s);
    if (b !== undefined && parseUserBareJid(b) !== b) fail(`pure: parseUserBareJid not idempotent on ${JSON.stringify(s.slice(0, 80))}`);
    parseJid(s);
    // eslint-disable-next-line no-control-regex -- control characters are what is looked for
    if (/[@/\s\u0000-\u001f]/.test(senderLocalpart(s))) fail(`pure: senderLocalpart(${JSON.stringify(s.slice(0, 80))}) is not JID-safe`);
  } else if (kind === "seg") {
    const c = countSegments(s);
    if (c.segments === 0 && s !== "") fail(`pure: 0 segments for ${JSON.stringify(s.slice(0, 80))}`);
  } else if (kind === "sig") {
    if (verifySignature({ secret: s || "x", timestamp: String(Math.floor(Date.now() / 1000)), body: s, signature: s })) fail("pure: a junk signature verified");
  } else {
    const el = deliveryStanza(
      { kind: "chat", id: s.slice(0, 20), from: `${CONTACT}@${DOMAIN}`, to: "alice@localhost", body: s, mediaUrls: [], acceptedAt: Date.now() },
      { domain: DOMAIN, late: false },
    );
    const wire = xmlSafe(el.toString());
    // eslint-disable-next-line no-control-regex -- the characters XML 1.0 forbids are what is looked for
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(wire)) fail("pure: a rendered stanza holds a character XML forbids");
  }
}

// ---------------------------------------------------------------------------------------------
// checkpoints

let canarySeq = 0;
async function checkpoint(fuzzer: StanzaFuzzer, reconnectsAtStart: number, n: number): Promise<void> {
  const g = gateway!;
  const where = `after ${n} cases`;
  const t0 = Date.now();
  await fuzzer.settle(15_000);
  if ((await g.http.inject({ method: "GET", url: "/healthz" })).statusCode !== 200) fail(`${where}: /healthz did not answer 200`);
  const ready = await g.http.inject({ method: "GET", url: "/readyz" });
  if (ready.statusCode !== 200) fail(`${where}: /readyz answered ${ready.statusCode} ${ready.body.slice(0, 300)}`);
  if (g.xmppState().reconnects !== reconnectsAtStart) fail(`${where}: the component link dropped (${JSON.stringify(g.xmppState())})`);
  if (!alice!.isOnline()) {
    fail(`${where}: alice was disconnected by the server (the last stanzas sent: ${fuzzer.recent.join(" | ").slice(0, 1500)})`);
    throw new Error("alice is offline: stopping");
  }
  if (!(await pingGateway(alice!, DOMAIN, 10_000))) fail(`${where}: no answer to an XMPP ping through the server`);
  // The generated requests may have unlinked alice or rotated the webhook token: restore both.
  await admin("PUT", "/api/v1/users/alice@localhost", { phone: ALICE_NUMBER });
  await refreshToken();
  // Canaries, both ways, through the whole delivery.
  const tag = `canary-${++canarySeq}-${randomBytes(4).toString("hex")}`;
  const params = inboundSmsParams({ from: CONTACT, to: ALICE_NUMBER, body: tag, accountSid: SID });
  const inbound = await g.http.inject({
    method: "POST",
    url: "/twilio/sms",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signTwilioRequest(TOKEN, `${PUBLIC}/twilio/sms`, params) },
    payload: encodeForm(params),
  });
  if (inbound.statusCode !== 200) fail(`${where}: canary SMS answered ${inbound.statusCode}`);
  await alice!.send(xml("message", { to: `${CANARY_CONTACT}@${DOMAIN}`, type: "chat", id: tag }, xml("body", {}, tag)));
  const sentAt = Date.now();
  const deadline = sentAt + 60_000;
  let gotIn = false;
  let gotOut = false;
  while (Date.now() < deadline && !(gotIn && gotOut)) {
    gotIn ||= alice!.received.some((el) => el.name === "message" && el.getChildText("body") === tag);
    gotOut ||= twilio!.created.some((m) => m.body === tag);
    if (!(gotIn && gotOut)) await new Promise((r) => setTimeout(r, 50));
  }
  slowestCanaryMs = Math.max(slowestCanaryMs, Date.now() - sentAt);
  if (!gotIn) fail(`${where}: the canary SMS did not reach alice within 60 s`);
  if (!gotOut) {
    const refusal = alice!.received.find((el) => el.name === "message" && el.attrs.type === "error" && el.attrs.id === tag);
    fail(`${where}: alice's canary text did not reach Twilio within 60 s${refusal ? `; it was refused: ${refusal.toString().slice(0, 400)}` : ""}`);
  }
  twilio!.reset();
  alice!.received.length = 0;
  sampleRss();
  checkpointMs += Date.now() - t0;
}

// ---------------------------------------------------------------------------------------------
// the run

function pickCategories(count: number, rng: () => number): Category[] {
  const total = MIX.reduce((a, [, w]) => a + w, 0);
  return Array.from({ length: count }, () => {
    let x = rng() * total;
    for (const [c, w] of MIX) if ((x -= w) < 0) return c;
    return MIX[0]![0];
  });
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function main(): Promise<number> {
  const started = Date.now();
  process.stdout.write(
    `fuzz: ${TOTAL} cases, seed ${SEED} (FUZZ_SEED=${SEED} to reproduce), server ${process.env.XMPP_SERVER ?? "prosody"}${gc ? "" : " (no --expose-gc: RSS samples are noisier)"}\n`,
  );
  const { ctx } = await setUp();
  const g = gateway!;
  const fuzzer = new StanzaFuzzer(g, alice!, { tag: "f", maxBytes: 200_000 });
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  const rng = mulberry32(SEED);
  const reconnectsAtStart = g.xmppState().reconnects;
  const rssStart = sampleRss();
  const arbs = {
    "twilio-sms": httpCases.twilioSms(ctx),
    "twilio-status": httpCases.twilioStatus(ctx),
    admin: httpCases.adminCase(ctx),
    "message-in": httpCases.messageInCase(ctx),
    "body-limit": httpCases.overLimitCase(ctx),
    "stanza-direct": rawStanza(DOMAIN, 20_000),
    "stanza-server": serverStanza(DOMAIN, 20_000),
    pure: pureCase,
  } as const;
  const BATCH = 500;
  let done = 0;
  let nextCheck = CHECK_EVERY;
  let lastProgress = Date.now();
  let batchNo = 0;
  let stopped = false;
  while (done < TOTAL && !stopped) {
    const cats = pickCategories(Math.min(BATCH, TOTAL - done), rng);
    const need = new Map<Category, number>();
    for (const c of cats) need.set(c, (need.get(c) ?? 0) + 1);
    const drawn = new Map<Category, unknown[]>();
    for (const [c, k] of need) drawn.set(c, fc.sample(arbs[c] as fc.Arbitrary<unknown>, { numRuns: k, seed: SEED + ++batchNo }));
    // HTTP cases run HTTP_CONCURRENCY at a time; stanzas and pure cases one after the other
    const inFlight = new Set<Promise<void>>();
    for (const c of cats) {
      const item = drawn.get(c)!.pop()!;
      cases.set(c, (cases.get(c) ?? 0) + 1);
      if (c === "stanza-direct" || c === "stanza-server") {
        try {
          await fuzzer.send(item as never, c === "stanza-direct" ? "direct" : "server");
        } catch (err) {
          fail(`${c}: ${String(err).slice(0, 1500)}`);
          stopped = true;
          break;
        }
        if (fuzzer.stats.sent % 100 === 0) await fuzzer.settle(15_000);
      } else if (c === "pure") {
        runPure(item as [string, string]);
      } else {
        const hc = item as HttpCase;
        const p = send(g.http, hc)
          .then((r) => {
            const byStatus = statuses.get(c) ?? new Map<number, number>();
            byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
            statuses.set(c, byStatus);
            try {
              checkOutcome(hc, r);
            } catch (err) {
              fail(`${c}: ${(err as Error).message.slice(0, 800)}`);
            }
          })
          .catch((err: unknown) => fail(`${c}: inject threw ${String(err).slice(0, 500)}`))
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
        if (inFlight.size >= HTTP_CONCURRENCY) await Promise.race(inFlight);
      }
      done++;
      if (done >= nextCheck) {
        await Promise.all(inFlight);
        nextCheck += CHECK_EVERY;
        try {
          await checkpoint(fuzzer, reconnectsAtStart, done);
        } catch (err) {
          fail(String(err));
          stopped = true;
          break;
        }
        const maxStall = loop.max / 1e6;
        if (maxStall > MAX_STALL_MS) {
          stalls++;
          fail(`after ${done} cases: the event loop stalled for ${Math.round(maxStall)} ms`);
        }
        loop.reset();
      }
      if (Date.now() - lastProgress > 15_000) {
        lastProgress = Date.now();
        const s = Math.max(1, (Date.now() - started) / 1000);
        process.stdout.write(`fuzz: ${done}/${TOTAL} cases, ${Math.round(done / s)}/s, RSS ${Math.round(process.memoryUsage().rss / 1048576)} MB, ${failures.length} failure(s)\n`);
      }
    }
    await Promise.all(inFlight);
  }
  if (!stopped) await checkpoint(fuzzer, reconnectsAtStart, done).catch((err: unknown) => fail(String(err)));
  loop.disable();

  // ---- verdict
  const st = fuzzer.stats;
  for (const id of st.iqMissing) fail(`IQ never answered: ${id}`);
  for (const id of st.iqDuplicated) fail(`IQ answered more than once: ${id}`);
  for (const id of st.answeredErrors) fail(`an error or IQ result was answered: ${id}`);
  for (const id of st.internalErrors) fail(`IQ answered internal-server-error: ${id}`);
  for (const u of unhandled) fail(u);
  for (const l of errorLogs) fail(`error-level log line: ${l}`);
  const q = Math.max(1, Math.floor(rss.length / 4));
  const avg = (xs: { mb: number }[]) => xs.reduce((a, x) => a + x.mb, 0) / Math.max(1, xs.length);
  const firstQ = avg(rss.slice(0, q));
  const lastQ = avg(rss.slice(-q));
  const memoryOk = rss.length < 8 || lastQ <= firstQ * 1.5 + 64;
  if (!memoryOk) fail(`memory keeps growing: last quarter ${lastQ.toFixed(0)} MB on average against ${firstQ.toFixed(0)} MB in the first`);

  // ---- summary
  const seconds = (Date.now() - started) / 1000;
  const line = (a: string, b: string) => `  ${a.padEnd(16)} ${b}`;
  const out: string[] = ["", "fuzz summary", "", line("category", "cases   answers")];
  for (const [c] of MIX) {
    const byStatus = statuses.get(c);
    const detail = byStatus
      ? [...byStatus]
          .sort((a, b) => a[0] - b[0])
          .map(([s, n]) => `${s}×${n}`)
          .join(" ")
      : "";
    out.push(line(c, `${String(cases.get(c) ?? 0).padStart(6)}  ${detail}`));
  }
  out.push(line("total", `${String(done).padStart(6)}  in ${seconds.toFixed(0)} s (${Math.round(done / seconds)} cases/s)`));
  out.push(
    "",
    line(
      "stanzas",
      `${st.sent} sent (${st.skippedTooLarge} skipped: over 200 KB), ${st.iqs} IQ get/set: ${st.iqMissing.length} unanswered, ${st.iqDuplicated.length} answered twice, ${st.internalErrors.length} internal-server-error; ${st.answeredErrors.length} errors answered`,
    ),
    line("IQ answered by", [...st.repliesBy].map(([k, v]) => `${k || "?"}×${v}`).join(", ")),
    line("component link", `${g.xmppState().reconnects - reconnectsAtStart} drop(s); ${canarySeq} checkpoint(s) with canaries both ways`),
    line(
      "RSS",
      `start ${rssStart.toFixed(0)} MB, peak ${Math.max(...rss.map((r) => r.mb)).toFixed(0)} MB, end ${rss.at(-1)!.mb.toFixed(0)} MB; first-quarter avg ${firstQ.toFixed(0)} MB, last-quarter avg ${lastQ.toFixed(0)} MB (${rss.length} samples) ${memoryOk ? "bounded" : "GROWING"}`,
    ),
    line("event loop", `stalls over ${MAX_STALL_MS} ms: ${stalls}`),
    line("checkpoints", `${(checkpointMs / 1000).toFixed(0)} s in all; slowest canary ${(slowestCanaryMs / 1000).toFixed(1)} s`),
    line("unhandled", `${unhandled.length} rejection(s)/exception(s)`),
    "",
    "  log lines at warn and above, by message:",
    ...[...logCounts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .map(([k, v]) => `    ${String(v).padStart(7)}  ${k}`),
    "",
    failures.length === 0 ? `fuzz: PASSED (seed ${SEED})` : `fuzz: FAILED (seed ${SEED}), ${failures.length} failure(s):\n${failures.map((f) => `  - ${f}`).join("\n")}`,
    "",
  );
  process.stdout.write(out.join("\n"));
  return failures.length === 0 ? 0 : 1;
}

let code = 2;
try {
  code = await main();
} catch (err) {
  process.stderr.write(`fuzz: the harness failed: ${String((err as Error)?.stack ?? err)}\n`);
  if (failures.length) process.stderr.write(failures.map((f) => `  - ${f}`).join("\n") + "\n");
} finally {
  await tearDown();
}
process.exit(code);
