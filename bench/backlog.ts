// Memory while a backlog waits: 100,000 inbound SMS accepted while the XMPP server is down.
// The gateway must stay flat (target: peak RSS under 300 MB), because everything waits in Redis. It
// runs built, with the heap cap of `npm start`: without a cap V8 grows the heap lazily under load
// (garbage, not live data: with a 64 MB cap the same run stays at ~130 MB RSS).
//   npm run bench            (BACKLOG_COUNT to change the count; builds nothing: run npm run build first)
import { readFileSync } from "node:fs";
import { Pool } from "undici";
import { inboundSmsParams, signTwilioRequest } from "../test/fakes/fake-twilio.js";
import { startGatewayProcess } from "../test/support/gateway-process.js";
import { freePort } from "../test/support/ports.js";
import { startRedis } from "../test/support/redis.js";

const COUNT = Number(process.env.BACKLOG_COUNT ?? 100_000);
const SID = `AC${"3".repeat(32)}`;
const TOKEN = "bench-token";
const PUBLIC = "https://gw.example.test";

/** The node flags `npm start` uses (heap cap), so the bench measures the gateway as it runs in production. */
function startNodeArgs(): string[] {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { scripts: { start: string } };
  const words = pkg.scripts.start.split(/\s+/);
  return words.slice(1, words.indexOf("dist/src/main.js"));
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

const redis = await startRedis();
const deadPort = await freePort(); // nothing listens: the XMPP server is "down" the whole time
const gw = await startGatewayProcess({
  XMPP_SERVICE: `xmpp://127.0.0.1:${deadPort}`,
  XMPP_DOMAIN: "sms.localhost",
  XMPP_SECRET: "x",
  REDIS_URL: redis.url,
  PUBLIC_URL: PUBLIC,
  TWILIO_ACCOUNT_SID: SID,
  TWILIO_AUTH_TOKEN: TOKEN,
  TWILIO_API_URL: "http://127.0.0.1:9",
  LOG_LEVEL: "warn",
}, { built: true, nodeArgs: startNodeArgs() });
try {
  await gw.start();
  await gw.admin("PUT", "/api/v1/users/alice@localhost", { phone: "+15550001111" });
  const pid = gw.pid()!;
  const startRss = rssMb(pid);
  let peak = startRss;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 200);

  const pool = new Pool(gw.url, { connections: 32, pipelining: 1 });
  let next = 0;
  let failed = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < COUNT) {
        const i = next++;
        const params = inboundSmsParams({ from: `+1555${String(2000000 + (i % 1000)).padStart(7, "0")}`, to: "+15550001111", body: `backlog ${i}`, accountSid: SID });
        const res = await pool.request({
          path: "/twilio/sms",
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signTwilioRequest(TOKEN, `${PUBLIC}/twilio/sms`, params) },
          body: new URLSearchParams(params).toString(),
        });
        await res.body.dump();
        if (res.statusCode !== 200) failed++;
      }
    }),
  );
  const intakeS = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 10_000)); // the consumers keep trying the absent server
  clearInterval(sampler);
  const depth = await (await import("redis")).createClient({ url: redis.url }).connect().then(async (c) => {
    let n = 0;
    for (const key of await c.keys("sb:v1:stream:to-xmpp:*")) n += await c.xLen(key);
    await c.quit();
    return n;
  });
  const endRss = rssMb(pid);
  await pool.close();
  const rows: [string, string][] = [
    ["messages accepted (200)", String(COUNT - failed)],
    ["failed requests", String(failed)],
    ["waiting in Redis (to-xmpp)", String(depth)],
    ["intake rate", `${Math.round(COUNT / intakeS)} msg/s`],
    ["gateway RSS at start", `${startRss.toFixed(0)} MB`],
    ["gateway RSS peak", `${peak.toFixed(0)} MB`],
    ["gateway RSS at end", `${endRss.toFixed(0)} MB`],
    ["target", "peak < 300 MB"],
  ];
  for (const [k, v] of rows) console.log(`${k.padEnd(30)} ${v}`);
  if (peak >= 300 || failed > 0 || depth < COUNT - failed) process.exitCode = 1;
} finally {
  await gw.kill();
  await redis.stop();
}
