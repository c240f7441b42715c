// The end-to-end benchmark (issue 8): the built gateway as its own process, Redis with AOF, a real
// XMPP server, the fake Twilio and a webhook receiver on loopback, driven by real clients. Every
// throughput is reported as a ratio to a baseline measured in the same run on the same machine, so
// figures compare across machines. See bench/README.md.
//
//   npm run bench                        # Prosody; builds first
//   npm run bench -- --server ejabberd
//   BENCH_SECONDS=10 npm run bench       # shorter measurement windows (default 30 s)
//   BENCH_ONLY=inbound,outbound          # some flows only (inbound, outbound, webhook-in, webhook-out, backlog)
//   BENCH_PROFILE=1                      # the gateway writes a CPU profile (bench/results/profiles/)
//   BENCH_LOADS=rate                     # the fixed rate only (or max only); default both
//   BENCH_HTTP_CONNECTIONS=128           # keep-alive connections of the HTTP load (default 64)
//   BENCH_NODE_ARGS="--max-old-space-size=160"   # the gateway's node flags instead of npm start's
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { cpus, totalmem } from "node:os";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { createClient } from "redis";
import { inboundSmsParams, startFakeTwilio } from "../test/fakes/fake-twilio.js";
import { PROCESS_ADMIN_TOKEN, startGatewayProcess } from "../test/support/gateway-process.js";
import { freePort } from "../test/support/ports.js";
import { startRedis } from "../test/support/redis.js";
import { startXmppServer } from "../test/support/xmpp-server.js";
import { runBacklog, startNodeArgs, type BacklogResult } from "./backlog.js";
import { Flow, type FlowResult, type Load, type Sender } from "./lib/flow.js";
import { httpSender, httpTarget, twilioSmsWebhook } from "./lib/http-sender.js";
import { findPid, ProcessSampler } from "./lib/measure.js";
import { runtimeProbe, type RuntimeFigures } from "./lib/runtime-probe.js";
import { escapeXml, rawClient, rawComponent, type RawPeer } from "./lib/raw-xmpp.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const args = process.argv.slice(2);
const SERVER_ARG = (args.includes("--server") ? args[args.indexOf("--server") + 1] : process.env.XMPP_SERVER) ?? "prosody";
if (SERVER_ARG !== "prosody" && SERVER_ARG !== "ejabberd") throw new Error(`--server must be prosody or ejabberd, got ${SERVER_ARG}`);
const SERVER: "prosody" | "ejabberd" = SERVER_ARG;
const MEASURE_S = Number(process.env.BENCH_SECONDS ?? 30);
const BASELINE_S = Number(process.env.BENCH_BASELINE_SECONDS ?? Math.min(10, MEASURE_S));
const WARMUP_S = 3;
const RATE = Number(process.env.BENCH_RATE ?? 2000);
const ONLY = new Set((process.env.BENCH_ONLY ?? "inbound,outbound,webhook-in,webhook-out,backlog").split(",").map((s) => s.trim()));
/** BENCH_PROFILE=1: the gateway runs with --cpu-prof; its profile lands in bench/results/profiles/. */
const PROFILE_DIR = process.env.BENCH_PROFILE ? fileURLToPath(new URL("./results/profiles/", import.meta.url)) : undefined;
const IN_FLIGHT = 2000; // the closed loops' bound on messages accepted but not yet arrived
const LOADS = new Set((process.env.BENCH_LOADS ?? "rate,max").split(",").map((s) => s.trim()));
const HTTP_CONCURRENCY = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 64);

const DOMAIN = "sms.localhost";
const SECRET = "bench-component-secret";
const ACCOUNT_SID = `AC${"b".repeat(32)}`;
const AUTH_TOKEN = "bench-auth-token";
const PUBLIC_URL = "https://gw.bench.test";
// Sixteen users: a conversation's messages go one after the other, so a bot talking to a single user
// could never show the gateway's capacity.
const USERS = Array.from({ length: 16 }, (_, i) => ({ name: `u${i}`, password: `u${i}-pw`, phone: `+155501000${String(i).padStart(2, "0")}` }));
// 51 contacts: coprime with the 16 users, so the warm-up has every contact write to every user
const CONTACTS = Array.from({ length: 51 }, (_, i) => `+1555020${String(i).padStart(4, "0")}`);

const say = (s: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

interface Row {
  flow: string;
  load: string;
  result: FlowResult;
  cpuPercent?: number;
  peakRssMb?: number;
  baseline?: { name: string; throughput: number };
  /** CPU (% of one core) of the benchmark itself, the XMPP server and Redis during the flow */
  otherCpu?: Record<string, number>;
  /** Redis commands per delivered message, by command (INFO commandstats) */
  redisPerMessage?: Record<string, number>;
  /** The gateway's GC and event-loop delay during the flow */
  runtime?: RuntimeFigures;
}

/** Calls per Redis command so far (INFO commandstats), once the benchmark's Redis is up. */
let redisStats: (() => Promise<Record<string, number>>) | undefined;

const otherPids: Record<string, number> = { bench: process.pid };

const rows: Row[] = [];
const baselines: Record<string, number> = {};
const flows = new Map<string, Flow>();
/** Every text that arrives anywhere goes to the flow its tag names. */
const arrived = (text: string) => flows.get(text.slice(0, text.indexOf(" ")))?.arrived(text);

async function measure(name: string, tag: string, load: Load, send: Sender, opts: { pid?: number; baseline?: string; seconds?: number; gatewayUrl?: string } = {}): Promise<Row> {
  const flow = new Flow({ tag, load, warmupS: WARMUP_S, measureS: opts.seconds ?? MEASURE_S, drainS: 20, send });
  flows.set(tag, flow);
  const sampler = opts.pid === undefined ? undefined : new ProcessSampler(opts.pid);
  sampler?.start();
  // the other processes' CPU says which part is the bottleneck
  const others = Object.entries(otherPids).map(([name, pid]) => [name, new ProcessSampler(pid)] as const);
  for (const [, o] of others) o.start();
  const statsBefore = redisStats ? await redisStats() : undefined;
  const probe = opts.gatewayUrl ? await runtimeProbe(opts.gatewayUrl, PROCESS_ADMIN_TOKEN) : undefined;
  const result = await flow.run();
  const usage = sampler?.stop();
  const runtime = await probe?.stop();
  const statsAfter = redisStats ? await redisStats() : undefined;
  const redisPerMessage: Record<string, number> = {};
  if (statsBefore && statsAfter && result.delivered > 0) {
    for (const [cmd, calls] of Object.entries(statsAfter)) {
      const n = (calls - (statsBefore[cmd] ?? 0)) / result.delivered;
      if (n >= 0.05 && !["info", "ping"].includes(cmd)) redisPerMessage[cmd] = Math.round(n * 100) / 100;
    }
  }
  const otherCpu = Object.fromEntries(others.map(([name, o]) => [name, Math.round(o.stop().cpuPercent)]));
  flows.delete(tag);
  const row: Row = {
    flow: name,
    load: result.load,
    result,
    ...(usage ? { cpuPercent: usage.cpuPercent, peakRssMb: usage.peakRssMb } : {}),
    otherCpu,
    redisPerMessage,
    ...(runtime ? { runtime } : {}),
    ...(opts.baseline && baselines[opts.baseline] ? { baseline: { name: opts.baseline, throughput: baselines[opts.baseline]! } } : {}),
  };
  rows.push(row);
  const r = result;
  say(
    `${name} @ ${r.load}: ${Math.round(r.throughput)} msg/s delivered (intake ${Math.round(r.intake)}/s), e2e p50 ${r.e2e.p50.toFixed(1)} p99 ${r.e2e.p99.toFixed(1)} ms` +
      (r.ack ? `, ack p50 ${r.ack.p50.toFixed(1)} p99 ${r.ack.p99.toFixed(1)} ms` : "") +
      (usage ? `, gateway CPU ${usage.cpuPercent.toFixed(0)} %, peak RSS ${usage.peakRssMb.toFixed(0)} MB` : "") +
      (runtime
        ? `, GC ${runtime.gcPercent.toFixed(0)} % (${runtime.gcPausesOver10ms} pauses ≥ 10 ms), event-loop delay p99 ${runtime.loopDelay.p99.toFixed(1)} max ${runtime.loopDelay.max.toFixed(1)} ms`
        : "") +
      `, CPU elsewhere ${Object.entries(otherCpu)
        .map(([k, v]) => `${k} ${v} %`)
        .join(", ")}` +
      (Object.keys(redisPerMessage).length
        ? `, Redis commands per message ${Object.values(redisPerMessage)
            .reduce((a, b) => a + b, 0)
            .toFixed(1)} ${JSON.stringify(redisPerMessage)}`
        : "") +
      `, lost ${r.lost}, dup ${r.duplicates}, refused ${r.refused}${Object.keys(r.errors).length ? ` ${JSON.stringify(r.errors)}` : ""}`,
  );
  return row;
}

// Every message has an id, as clients send them (the gateway dedupes resends by it).
const chat = (from: string | undefined, to: string, body: string) =>
  `<message${from ? ` from='${from}'` : ""} to='${to}' type='chat' id='${body.slice(0, body.lastIndexOf(" ")).replace(" ", "-")}'><body>${escapeXml(body)}</body></message>`;

/** A sender writing to an XMPP peer: resolves at once, or once the socket drained. */
function xmppSender(peer: (seq: number) => RawPeer, stanza: (seq: number, text: string) => string): Sender {
  return async (seq, text) => {
    const p = peer(seq);
    if (!p.write(stanza(seq, text))) await p.drained();
    return { accepted: true };
  };
}

async function startReceiver(onBody: (body: string) => void): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        onBody((JSON.parse(Buffer.concat(chunks).toString("utf8")) as { body: string }).body);
      } catch {
        // not ours
      }
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 30_000;
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${port}/hook`, server };
}

/**
 * The durable outbound floor (bench/baselines/outbound-floor.ts) in its own process, connected as the
 * component and driven like the gateway's outbound run: the least any gateway must spend per SMS here.
 */
async function outboundFloor(hop: "sms" | "webhook", server: { componentPort: number; c2sPort: number; domain: string }, redisUrl: string, twilioUrl: string, webhookUrl: string): Promise<void> {
  const options = { componentPort: server.componentPort, domain: DOMAIN, secret: SECRET, redisUrl, twilioUrl, webhookUrl, hop, accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN };
  const child = spawn(process.execPath, ["--import", "tsx", "bench/baselines/outbound-floor.ts", JSON.stringify(options)], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  try {
    await untilReady(child, "the outbound floor");
    const clients = await Promise.all(USERS.map((u) => rawClient({ port: server.c2sPort, domain: server.domain, username: u.name, password: u.password, resource: "floor" })));
    const send = xmppSender(
      (seq) => clients[seq % clients.length]!,
      (seq, text) => chat(undefined, hop === "sms" ? `${CONTACTS[Math.floor(seq / clients.length) % CONTACTS.length]}@${DOMAIN}` : `bot@${DOMAIN}`, text),
    );
    const name = `${hop} floor`;
    const row = await measure(`baseline: ${name} (least work of any durable gateway)`, hop === "sms" ? "fs" : "fw", { kind: "max", inFlight: IN_FLIGHT, concurrency: 1 }, send, {
      pid: child.pid!,
      seconds: BASELINE_S,
      baseline: "client → component",
    });
    baselines[name] = row.result.throughput;
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    child.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 500)); // the server lets the component's domain go
  }
}

/** Resolves once a baseline process printed "ready"; rejects if it exits first. */
function untilReady(child: ChildProcessByStdio<null, Readable, null>, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`${what} exited with ${code}`)));
  });
}

/** Bare Fastify in its own process, answered as fast as it goes: each answer counts as an arrival. */
async function bareFastifyBaseline(form: (text: string) => { path: string; headers: Record<string, string>; body: string }): Promise<void> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", "bench/baselines/bare-fastify.ts", String(port)], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  try {
    await untilReady(child, "bare Fastify");
    const target = httpTarget(`http://127.0.0.1:${port}`, HTTP_CONCURRENCY);
    const post = httpSender(target, (_seq, text) => form(text));
    const row = await measure(
      "baseline: bare Fastify",
      "bf",
      { kind: "max", inFlight: Number.MAX_SAFE_INTEGER, concurrency: HTTP_CONCURRENCY },
      async (seq, text) => {
        const r = await post(seq, text);
        arrived(text);
        return r;
      },
      { pid: child.pid!, seconds: BASELINE_S },
    );
    baselines["bare Fastify"] = row.result.throughput;
    await target.close();
  } finally {
    child.kill("SIGKILL");
  }
}

async function main(): Promise<number> {
  say(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}; XMPP server ${SERVER}`);
  const redis = await startRedis(); // AOF on (appendfsync everysec), as production
  const server = await startXmppServer({ kind: SERVER, componentDomain: DOMAIN, componentSecret: SECRET, users: USERS.map((u) => ({ username: u.name, password: u.password })) });
  const serverPid = findPid(server.dir);
  const redisPid = findPid(`--port ${new URL(redis.url).port}`) ?? findPid(`:${new URL(redis.url).port}`);
  const statsClient = await createClient({ url: redis.url }).connect();
  redisStats = async () => {
    const out: Record<string, number> = {};
    for (const m of (await statsClient.info("commandstats")).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
    return out;
  };
  if (serverPid) otherPids[SERVER] = serverPid;
  if (redisPid) otherPids.redis = redisPid;
  const twilio = await startFakeTwilio({ accounts: { [ACCOUNT_SID]: AUTH_TOKEN }, keep: false, onCreate: (m) => arrived(m.body) });
  const receiver = await startReceiver(arrived);
  let backlog: BacklogResult | undefined;
  let code = 0;
  try {
    // --- baselines -----------------------------------------------------------------------------
    const sampleParams = inboundSmsParams({ from: CONTACTS[0]!, to: USERS[0]!.phone, body: "BODY", accountSid: ACCOUNT_SID });
    const form = (text: string) => twilioSmsWebhook(AUTH_TOKEN, PUBLIC_URL, { ...sampleParams, Body: text });
    if (ONLY.has("inbound") || ONLY.has("webhook-in")) await bareFastifyBaseline(form);

    {
      const component = await rawComponent({ port: server.componentPort, domain: DOMAIN, secret: SECRET });
      const client = await rawClient({ port: server.c2sPort, domain: server.domain, username: USERS[0]!.name, password: USERS[0]!.password, resource: "bench" });
      client.onBody(arrived);
      component.onBody(arrived);
      const rc = await measure(
        "baseline: component → client",
        "rc",
        { kind: "max", inFlight: IN_FLIGHT, concurrency: 1 },
        xmppSender(
          () => component,
          (_s, text) => chat(`+15550200000@${DOMAIN}`, client.jid, text),
        ),
        { pid: serverPid, seconds: BASELINE_S },
      );
      baselines["component → client"] = rc.result.throughput;
      const cr = await measure(
        "baseline: client → component",
        "cr",
        { kind: "max", inFlight: IN_FLIGHT, concurrency: 1 },
        xmppSender(
          () => client,
          (_s, text) => chat(undefined, `+15550200000@${DOMAIN}`, text),
        ),
        { pid: serverPid, seconds: BASELINE_S },
      );
      baselines["client → component"] = cr.result.throughput;
      await Promise.all([client.close(), component.close()]);
      await new Promise((r) => setTimeout(r, 500)); // the server lets the component's domain go
    }
    const floors = process.env.BENCH_FLOOR === "0" ? [] : (["sms", "webhook"] as const).filter((hop) => ONLY.has(hop === "sms" ? "outbound" : "webhook-out"));
    for (const hop of floors) await outboundFloor(hop, server, redis.url, twilio.url, receiver.url);
    if (floors.length > 0) {
      // The floors leave ~10^5 keys and a large append-only file; a rewrite of it during a later flow
      // would measure Redis forking, not the gateway.
      await statsClient.flushAll();
      await statsClient.bgRewriteAof().catch(() => undefined); // one already under way does as well
      while (/aof_rewrite_(in_progress|scheduled):1/.test(await statsClient.info("persistence"))) await new Promise((r) => setTimeout(r, 200));
    }

    // --- the gateway ---------------------------------------------------------------------------
    const gw = await startGatewayProcess(
      {
        SMS_PROVIDER: "twilio",
        XMPP_SERVICE: server.componentService,
        XMPP_DOMAIN: DOMAIN,
        XMPP_SECRET: SECRET,
        REDIS_URL: redis.url,
        PUBLIC_URL,
        TWILIO_ACCOUNT_SID: ACCOUNT_SID,
        TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        TWILIO_API_URL: twilio.url,
        WEBHOOK_ALLOW_PRIVATE: "true",
        SECRETS_KEY: randomBytes(32).toString("base64"),
        LOG_LEVEL: "info",
        // the benchmark measures capacity, not the abuse limits a person's account would have
        USER_MESSAGES_PER_MINUTE: "0",
        USER_SEGMENTS_PER_DAY: "0",
        BREAKER_SEGMENTS_PER_HOUR: "0",
        WEBHOOK_IN_PER_MINUTE: "0",
        // BENCH_GATEWAY_ENV="PIPELINE_PARTITIONS=16 LOG_LEVEL=warn": try other settings
        ...Object.fromEntries(
          (process.env.BENCH_GATEWAY_ENV ?? "")
            .split(" ")
            .filter(Boolean)
            .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
        ),
      },
      { built: true, nodeArgs: [...(process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? startNodeArgs()), ...(PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : [])] },
    );
    try {
      await gw.start();
      await gw.waitConnected(20_000);
      const pid = gw.pid()!;
      for (const u of USERS) {
        const res = await gw.admin("PUT", `/api/v1/users/${u.name}@${server.domain}`, { phone: u.phone });
        if (res.status >= 300) throw new Error(`linking ${u.name}: ${res.status} ${JSON.stringify(res.json)}`);
      }
      const hook = await gw.admin("PUT", "/api/v1/webhooks/bot", { url: receiver.url, allow: USERS.map((u) => `${u.name}@${server.domain}`) });
      if (hook.status >= 300) throw new Error(`webhook: ${hook.status} ${JSON.stringify(hook.json)}`);
      const botToken = (hook.json as { token: string }).token;
      const clients = await Promise.all(USERS.map((u) => rawClient({ port: server.c2sPort, domain: server.domain, username: u.name, password: u.password, resource: "bench" })));
      for (const c of clients) c.onBody(arrived);
      const http = httpTarget(gw.url, HTTP_CONCURRENCY);

      const inboundSend = httpSender(http, (seq, text) => {
        const params = inboundSmsParams({ from: CONTACTS[seq % CONTACTS.length]!, to: USERS[seq % USERS.length]!.phone, body: text, accountSid: ACCOUNT_SID });
        return twilioSmsWebhook(AUTH_TOKEN, PUBLIC_URL, params);
      });
      const outboundSend = xmppSender(
        (seq) => clients[seq % clients.length]!,
        (seq, text) => chat(undefined, `${CONTACTS[Math.floor(seq / clients.length) % CONTACTS.length]}@${DOMAIN}`, text),
      );
      const webhookInSend = httpSender(http, (seq, text) => ({
        path: "/api/v1/webhooks/bot/messages",
        headers: { "content-type": "application/json", authorization: `Bearer ${botToken}` },
        body: JSON.stringify({ to: `${USERS[seq % USERS.length]!.name}@${server.domain}`, body: text }),
      }));
      const webhookOutSend = xmppSender(
        (seq) => clients[seq % clients.length]!,
        (_seq, text) => chat(undefined, `bot@${DOMAIN}`, text),
      );

      // Warm-up: every contact has written to every user once (introductions happen once, not in the
      // measurement), and every connection pool is open.
      await measure("warm-up", "wu", { kind: "max", inFlight: 500, concurrency: 16 }, inboundSend, { seconds: 2 });
      rows.pop();
      await measure("warm-up", "wo", { kind: "max", inFlight: 500, concurrency: 1 }, outboundSend, { seconds: 2 });
      rows.pop();

      const runs: [string, string, string, Sender, string][] = [
        ["inbound", "inbound SMS (Twilio webhook → XMPP)", "in", inboundSend, "component → client"],
        ["outbound", "outbound SMS (XMPP → Twilio API)", "out", outboundSend, "client → component"],
        ["webhook-in", "webhook in (message-in API → XMPP)", "win", webhookInSend, "component → client"],
        ["webhook-out", "webhook out (XMPP → signed POST)", "wout", webhookOutSend, "client → component"],
      ];
      for (const [key, name, tag, send, baseline] of runs) {
        if (!ONLY.has(key)) continue;
        const isHttp = key === "inbound" || key === "webhook-in";
        if (LOADS.has("rate")) await measure(name, `${tag}r`, { kind: "rate", perSecond: RATE }, send, { pid, baseline, gatewayUrl: gw.url });
        if (LOADS.has("max")) await measure(name, `${tag}m`, { kind: "max", inFlight: IN_FLIGHT, concurrency: isHttp ? HTTP_CONCURRENCY : 1 }, send, { pid, baseline, gatewayUrl: gw.url });
        if (!gw.running()) throw new Error(`the gateway died during "${name}"; its log ends:\n${gw.log().split("\n").slice(-30).join("\n")}`);
      }
      await http.close();
      await Promise.all(clients.map((c) => c.close()));
    } finally {
      // a profile is written on a clean exit only
      if (PROFILE_DIR) await gw.terminate(30_000);
      else await gw.kill();
    }
    if (PROFILE_DIR) say(`gateway CPU profile in ${PROFILE_DIR} (summary: npx tsx bench/profile-summary.ts ${PROFILE_DIR}/*.cpuprofile)`);
    if (ONLY.has("backlog")) {
      say("backlog: 100,000 inbound SMS while the XMPP server is down");
      backlog = await runBacklog({ count: Number(process.env.BACKLOG_COUNT ?? 100_000), redisUrl: redis.url, log: say });
    }
  } catch (err) {
    say(`benchmark failed: ${(err as Error).stack ?? String(err)}`);
    code = 2;
  } finally {
    redisStats = undefined;
    await statsClient.quit();
    receiver.server.close();
    await twilio.stop();
    await Promise.allSettled([server.stop(), redis.stop()]);
  }
  if (code === 0) code = report(backlog, { serverPid, redisPid });
  return code;
}

function report(backlog: BacklogResult | undefined, _pids: { serverPid?: number; redisPid?: number }): number {
  void _pids;
  const lines: string[] = [];
  lines.push("| flow | load | delivered msg/s | × baseline | e2e p50 / p99 ms | ack p50 / p99 ms | gateway CPU | peak RSS | lost | dup |");
  lines.push("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const x = r.result;
    const ratio = r.baseline ? `${((x.throughput / r.baseline.throughput) * 100).toFixed(0)} % of ${r.baseline.name}` : "";
    lines.push(
      `| ${r.flow} | ${r.load} | ${Math.round(x.throughput)} | ${ratio} | ${x.e2e.p50.toFixed(1)} / ${x.e2e.p99.toFixed(1)} | ${x.ack ? `${x.ack.p50.toFixed(1)} / ${x.ack.p99.toFixed(1)}` : "–"} | ${r.cpuPercent !== undefined ? `${r.cpuPercent.toFixed(0)} %` : "–"} | ${r.peakRssMb !== undefined ? `${r.peakRssMb.toFixed(0)} MB` : "–"} | ${x.lost} | ${x.duplicates} |`,
    );
  }
  if (backlog)
    lines.push(
      `\nBacklog: ${backlog.accepted} accepted while the XMPP server was down, ${backlog.waiting} waiting in Redis, peak RSS ${backlog.peakRssMb.toFixed(0)} MB, intake ${Math.round(backlog.intakePerS)}/s.`,
    );
  process.stdout.write(`\n${lines.join("\n")}\n`);

  const targets = checkTargets(backlog);
  process.stdout.write(`\nTargets\n${targets.map((t) => `  ${t.ok ? "PASS" : "FAIL"}  ${t.what}: ${t.measured}`).join("\n")}\n`);
  const out = {
    at: new Date().toISOString(),
    server: SERVER,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memGiB: totalmem() / 2 ** 30, node: process.version },
    settings: { measureS: MEASURE_S, baselineS: BASELINE_S, rate: RATE, inFlight: IN_FLIGHT, httpConcurrency: HTTP_CONCURRENCY },
    baselines,
    rows,
    backlog,
    targets,
  };
  mkdirSync(`${ROOT}bench/results`, { recursive: true });
  const file = `${ROOT}bench/results/${out.at.replace(/[:.]/g, "-")}-${SERVER}.json`;
  writeFileSync(file, JSON.stringify(out, null, 2) + "\n");
  say(`results written to ${file.slice(ROOT.length)}`);
  return targets.every((t) => t.ok) ? 0 : 1;
}

interface TargetCheck {
  what: string;
  measured: string;
  ok: boolean;
}

function checkTargets(backlog: BacklogResult | undefined): TargetCheck[] {
  const out: TargetCheck[] = [];
  const find = (name: string, load: string) => rows.find((r) => r.flow.startsWith(name) && r.load === load);
  const ratio = (name: string, min: number, floorName?: string) => {
    const r = find(name, "max");
    if (!r?.baseline) return;
    const x = r.result.throughput / r.baseline.throughput;
    const floor = floorName ? baselines[floorName] : undefined;
    const floorNote = floor
      ? `; the ${floorName} reached ${((floor / r.baseline.throughput) * 100).toFixed(0)} % (${Math.round(floor)} msg/s), the gateway ${((r.result.throughput / floor) * 100).toFixed(0)} % of it`
      : "";
    out.push({
      what: `${name} ≥ ${min * 100} % of ${r.baseline.name}`,
      measured: `${(x * 100).toFixed(0)} % (${Math.round(r.result.throughput)} msg/s)${floorNote}`,
      ok: x >= min && r.result.lost === 0,
    });
  };
  ratio("inbound SMS", 0.45);
  ratio("outbound SMS", 0.3, "sms floor");
  ratio("webhook in", 0.45);
  ratio("webhook out", 0.3, "webhook floor");
  for (const r of rows.filter((x) => x.load === `${RATE}/s`)) {
    out.push({ what: `${r.flow} at ${RATE}/s: e2e p99 < 50 ms`, measured: `${r.result.e2e.p99.toFixed(1)} ms`, ok: r.result.e2e.p99 < 50 && r.result.lost === 0 });
    if (r.result.ack) out.push({ what: `${r.flow} at ${RATE}/s: ack p99 < 15 ms`, measured: `${r.result.ack.p99.toFixed(1)} ms`, ok: r.result.ack.p99 < 15 });
    if (r.peakRssMb !== undefined) out.push({ what: `${r.flow} at ${RATE}/s: RSS < 160 MB`, measured: `${r.peakRssMb.toFixed(0)} MB`, ok: r.peakRssMb < 160 });
  }
  if (backlog)
    out.push({
      what: "RSS < 300 MB while 100,000 messages wait",
      measured: `${backlog.peakRssMb.toFixed(0)} MB`,
      ok: backlog.peakRssMb < 300 && backlog.failed === 0 && backlog.waiting >= backlog.accepted,
    });
  for (const r of rows)
    if (r.result.lost > 0 || r.result.duplicates > 0)
      out.push({ what: `${r.flow} (${r.load}): nothing lost or doubled`, measured: `${r.result.lost} lost, ${r.result.duplicates} doubled`, ok: false });
  return out;
}

process.exitCode = await main();
process.exit();
