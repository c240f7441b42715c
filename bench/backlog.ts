// Memory while a backlog waits: 100,000 inbound SMS accepted while the XMPP server is down. The
// gateway must stay flat (target: peak RSS under 300 MB), because everything waits in Redis. It runs
// built, with the heap cap of `npm start`: without a cap V8 grows the heap lazily under load
// (garbage, not live data: with a 64 MB cap the same run stays at ~130 MB RSS).
//   npm run bench                      (part of the whole benchmark)
//   npm run bench:backlog              (this part alone; BACKLOG_COUNT to change the count)
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createClient } from "redis";
import { inboundSmsParams } from "../test/fakes/fake-twilio.js";
import { startGatewayProcess } from "../test/support/gateway-process.js";
import { freePort } from "../test/support/ports.js";
import { startRedis } from "../test/support/redis.js";
import { httpSender, httpTarget, twilioSmsWebhook } from "./lib/http-sender.js";
import { ProcessSampler, rssMb } from "./lib/measure.js";

const SID = `AC${"3".repeat(32)}`;
const TOKEN = "bench-token";
const PUBLIC = "https://gw.example.test";

export interface BacklogResult {
  accepted: number;
  failed: number;
  waiting: number;
  intakePerS: number;
  startRssMb: number;
  peakRssMb: number;
  endRssMb: number;
}

/** The node flags `npm start` uses (heap cap), so the bench measures the gateway as it runs in production. */
export function startNodeArgs(): string[] {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { scripts: { start: string } };
  const words = pkg.scripts.start.split(/\s+/);
  return words.slice(1, words.indexOf("dist/src/main.js"));
}

export async function runBacklog(o: { count: number; redisUrl: string; log: (s: string) => void }): Promise<BacklogResult> {
  // A fresh database: what waits is only this run's.
  const admin = await createClient({ url: o.redisUrl }).connect();
  await admin.flushAll();
  const deadPort = await freePort(); // nothing listens: the XMPP server is "down" the whole time
  const gw = await startGatewayProcess(
    {
      XMPP_SERVICE: `xmpp://127.0.0.1:${deadPort}`,
      XMPP_DOMAIN: "sms.localhost",
      XMPP_SECRET: "x",
      REDIS_URL: o.redisUrl,
      PUBLIC_URL: PUBLIC,
      TWILIO_ACCOUNT_SID: SID,
      TWILIO_AUTH_TOKEN: TOKEN,
      TWILIO_API_URL: "http://127.0.0.1:9",
      LOG_LEVEL: "warn",
    },
    { built: true, nodeArgs: startNodeArgs() },
  );
  try {
    await gw.start();
    await gw.admin("PUT", "/api/v1/users/alice@localhost", { phone: "+15550001111" });
    const pid = gw.pid()!;
    const startRssMb = rssMb(pid);
    const sampler = new ProcessSampler(pid);
    sampler.start();
    const target = httpTarget(gw.url, 32);
    const post = httpSender(target, (i) => {
      const params = inboundSmsParams({ from: `+1555${String(2000000 + (i % 1000)).padStart(7, "0")}`, to: "+15550001111", body: `backlog ${i}`, accountSid: SID });
      return twilioSmsWebhook(TOKEN, PUBLIC, params);
    });
    let next = 0;
    let failed = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < o.count) {
          const r = await post(next++, "");
          if (!r.accepted) failed++;
        }
      }),
    );
    const intakeS = (performance.now() - t0) / 1000;
    o.log(`backlog: ${o.count - failed} accepted in ${intakeS.toFixed(1)} s; watching memory for 10 s more`);
    await new Promise((r) => setTimeout(r, 10_000)); // the consumers keep trying the absent server
    const usage = sampler.stop();
    let waiting = 0;
    for (const key of await admin.keys("sb:v1:stream:to-xmpp:*")) waiting += await admin.xLen(key);
    await target.close();
    return { accepted: o.count - failed, failed, waiting, intakePerS: o.count / intakeS, startRssMb, peakRssMb: usage.peakRssMb, endRssMb: rssMb(pid) };
  } finally {
    await admin.quit();
    await gw.kill();
  }
}

// Run alone
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const redis = await startRedis();
  try {
    const r = await runBacklog({ count: Number(process.env.BACKLOG_COUNT ?? 100_000), redisUrl: redis.url, log: (s) => console.log(s) });
    const rows: [string, string][] = [
      ["messages accepted (200)", String(r.accepted)],
      ["failed requests", String(r.failed)],
      ["waiting in Redis (to-xmpp)", String(r.waiting)],
      ["intake rate", `${Math.round(r.intakePerS)} msg/s`],
      ["gateway RSS at start", `${r.startRssMb.toFixed(0)} MB`],
      ["gateway RSS peak", `${r.peakRssMb.toFixed(0)} MB`],
      ["gateway RSS at end", `${r.endRssMb.toFixed(0)} MB`],
      ["target", "peak < 300 MB"],
    ];
    for (const [k, v] of rows) console.log(`${k.padEnd(30)} ${v}`);
    if (r.peakRssMb >= 300 || r.failed > 0 || r.waiting < r.accepted) process.exitCode = 1;
  } finally {
    await redis.stop();
  }
}
