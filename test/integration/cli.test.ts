// The `switchboard` admin CLI against an in-process gateway listening on a real port, with real Redis, a real XMPP server and the fake Twilio:
// users, webhooks, dead letters, test messages both ways, --json and --help; then doctor on a good setup
// and on each deliberately broken one (wrong PUBLIC_URL, Redis without AOF, a number whose webhook
// points elsewhere, a Messaging Service overriding it, wrong Twilio token, wrong XMPP secret both as the
// running gateway reports it and by a handshake of doctor's own once no gateway runs), and doctor --fix.
// Most runs call the CLI's entry function with its own argv, environment, working directory and output
// (fast); the ones marked "process" run `node src/cli/main.ts` as a child, for real exit codes and streams.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createClient } from "redis";
import { runCli } from "../../src/cli/program.js";
import { startFakeTwilio, type FakeTwilio } from "../fakes/fake-twilio.js";
import { ADMIN_TOKEN, startGateway, type TestGateway } from "../support/gateway.js";
import { freePort } from "../support/ports.js";
import { removeDirAtExit } from "../support/processes.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { waitUntil } from "../support/wait.js";
import { connectClient, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SECRET = "cli-component-secret";
const SID = `AC${"c".repeat(32)}`;
const AUTH_TOKEN = "cli-twilio-auth-token";
const ALICE_NUMBER = "+15550001111";
const BOB_NUMBER = "+15550002222";
const GHOST_NUMBER = "+15550003333";
const CONTACT = "+15552223333";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");

let redis: RedisServer;
let server: XmppServer;
let twilio: FakeTwilio;
let gw: TestGateway;
let gatewayStopped = false;
let alice: TestClient;
let port: number;
let publicUrl: string;
/** A directory without a .env: the CLI's working directory unless a test writes one. */
const cwd = mkdtempSync(join(tmpdir(), "sb-cli-"));
removeDirAtExit(cwd);

/** The gateway's own configuration, as doctor would read it from its .env. */
const gatewayEnv = (): Record<string, string> => ({
  XMPP_SERVICE: server.componentService,
  XMPP_DOMAIN: DOMAIN,
  XMPP_SECRET: SECRET,
  XMPP_RECONNECT_MIN_MS: "100",
  XMPP_MAX_BOUNCES: "1",
  REDIS_URL: redis.url,
  HTTP_PORT: String(port),
  PUBLIC_URL: publicUrl,
  TWILIO_ACCOUNT_SID: SID,
  TWILIO_AUTH_TOKEN: AUTH_TOKEN,
  TWILIO_API_URL: twilio.url,
  OUTBOUND_RETRY_BASE_MS: "50",
  WEBHOOK_ALLOW_PRIVATE: "true",
  SECRETS_KEY: Buffer.alloc(32, 7).toString("base64"),
  ADMIN_TOKEN,
});

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

const adminEnv = () => ({ SWITCHBOARD_URL: publicUrl, SWITCHBOARD_ADMIN_TOKEN: ADMIN_TOKEN });

/** `switchboard …` in this process, with only the given environment. */
async function cli(args: string[], env: Record<string, string> = adminEnv(), dir = cwd): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(args, { env, cwd: dir, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

/** `switchboard …` as a child process (node + tsx) with only the given environment (plus PATH). */
function cliProcess(args: string[], env: Record<string, string> = adminEnv(), dir = cwd): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--import", TSX, MAIN, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") return reject(new Error(`switchboard ${args.join(" ")}: ${err.message}\n${stderr}`));
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

const json = <T = Record<string, unknown>>(r: CliRun): T => {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
};

interface Check {
  name: string;
  ok: boolean;
  skipped?: boolean;
  detail: string;
  fix?: string;
  fixed?: string;
}

/** `switchboard doctor --json …` with the gateway's configuration (overridden by `env`). */
async function doctor(extra: string[] = [], env: Record<string, string> = {}, dir = cwd): Promise<{ code: number; ok: boolean; checks: Check[]; check(name: string): Check; run: CliRun }> {
  const run = await cli(["doctor", "--json", "--url", `http://127.0.0.1:${port}`, ...extra], { ...gatewayEnv(), ...env }, dir);
  const body = json<{ ok: boolean; checks: Check[] }>(run);
  return {
    code: run.code,
    ok: body.ok,
    checks: body.checks,
    run,
    check(name) {
      const c = body.checks.find((x) => x.name === name);
      assert.ok(c, `no check ${name} in ${JSON.stringify(body.checks, null, 2)}`);
      return c;
    },
  };
}

const describeChecks = (checks: Check[]) => JSON.stringify(checks, null, 2);

async function redisCommand(...args: string[]): Promise<unknown> {
  const c = createClient({ url: redis.url });
  await c.connect();
  try {
    return await c.sendCommand(args);
  } finally {
    c.destroy();
  }
}

before(async () => {
  [redis, server, twilio, port] = await Promise.all([
    startRedis(),
    startXmppServer({ componentDomain: DOMAIN, componentSecret: SECRET, users: [{ username: "alice", password: "alice-pw" }] }),
    startFakeTwilio({ accounts: { [SID]: AUTH_TOKEN } }),
    freePort(),
  ]);
  publicUrl = `http://127.0.0.1:${port}`;
  gw = await startGateway(gatewayEnv(), { listen: true });
  await gw.waitOnline(15_000);
  alice = await connectClient({ server, username: "alice", password: "alice-pw" });
  // alice's number, its webhook pointing at this gateway as the console would have it.
  twilio.addNumber(SID, ALICE_NUMBER).sms_url = `${publicUrl}/twilio/sms`;
});

after(async () => {
  await alice?.stop();
  if (!gatewayStopped) await gw?.stop();
  await Promise.allSettled([twilio?.stop(), server?.stop(), redis?.stop()]);
});

describe("admin commands", () => {
  test("--help works for every command, and usage errors exit 2", async () => {
    const commands = [
      [],
      ["users"],
      ["users", "link"],
      ["users", "unlink"],
      ["users", "list"],
      ["webhooks"],
      ["webhooks", "add"],
      ["webhooks", "remove"],
      ["webhooks", "list"],
      ["webhooks", "rotate-token"],
      ["dead-letters"],
      ["dead-letters", "list"],
      ["dead-letters", "retry"],
      ["send"],
      ["doctor"],
    ];
    const runs = await Promise.all(commands.map((c) => (c.length === 0 ? cliProcess(["--help"]) : cli([...c, "--help"]))));
    runs.forEach((r, i) => {
      const name = ["switchboard", ...commands[i]!].join(" ");
      assert.equal(r.code, 0, `${name} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: ${name}`), name);
      assert.match(r.stdout, /--json/, `${name} --help lists the global options`);
    });

    const [missingArg, unknownCommand, noToken, badUrl, version] = await Promise.all([
      cliProcess(["users", "link", "alice@localhost"]),
      cli(["frobnicate"]),
      cliProcess(["users", "list"], { SWITCHBOARD_URL: publicUrl }),
      cli(["users", "list", "--url", "not a url"]),
      cliProcess(["--version"]),
    ]);
    assert.equal(missingArg.code, 2);
    assert.match(missingArg.stderr, /missing required argument 'phone'/);
    assert.equal(unknownCommand.code, 2);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /SWITCHBOARD_ADMIN_TOKEN/);
    assert.equal(badUrl.code, 2);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  test("users link, show, list and unlink; problems are printed as their detail", async () => {
    let r = await cli(["users", "link", "alice@localhost", ALICE_NUMBER]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `linked alice@localhost to ${ALICE_NUMBER}\n`);

    r = await cli(["users", "link", "bob@localhost", BOB_NUMBER, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(json(r), { jid: "bob@localhost", phone: BOB_NUMBER, created: true });

    r = await cli(["--json", "users", "list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(json(r), {
      users: [
        { jid: "alice@localhost", phone: ALICE_NUMBER },
        { jid: "bob@localhost", phone: BOB_NUMBER },
      ],
    });

    r = await cli(["users", "list"]);
    assert.equal(r.stdout, `JID              PHONE\nalice@localhost  ${ALICE_NUMBER}\nbob@localhost    ${BOB_NUMBER}\n`);

    r = await cli(["users", "show", "bob@localhost"]);
    assert.equal(r.stdout, `bob@localhost  ${BOB_NUMBER}\n`);

    r = await cli(["users", "unlink", "bob@localhost"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "unlinked bob@localhost\n");

    // A problem answer: its detail on stderr, exit 1; with --json the problem itself on stdout.
    r = await cliProcess(["users", "unlink", "bob@localhost", "--json"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "switchboard: bob@localhost is not linked to a number. [HTTP 404]\n");
    assert.equal(json(r).status, 404);

    r = await cli(["users", "link", "carol@localhost", "5550009"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /body\.phone: must be a phone number in international format/);

    // A wrong token and an unreachable gateway say so.
    r = await cli(["users", "list"], { SWITCHBOARD_URL: publicUrl, SWITCHBOARD_ADMIN_TOKEN: "wrong-token-0123456789" });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /admin token.*SWITCHBOARD_ADMIN_TOKEN/);
    const closed = await freePort();
    r = await cli(["users", "list", "--url", `http://127.0.0.1:${closed}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach the gateway at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });

  test("webhooks add, list, rotate-token and remove", async () => {
    let r = await cli(["webhooks", "add", "deploybot", "http://127.0.0.1:9/hook", "--allow", "alice@localhost", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const created = json<{ name: string; token: string; secret: string; created: boolean; allow: string[] }>(r);
    assert.equal(created.created, true);
    assert.deepEqual(created.allow, ["alice@localhost"]);
    assert.ok(created.token.length > 20 && created.secret.length >= 16, r.stdout);

    r = await cli(["webhooks", "add", "deploybot", "http://127.0.0.1:9/hook2", "--allow", "alice@localhost", "*@localhost"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^updated webhook deploybot -> http:\/\/127\.0\.0\.1:9\/hook2\n {2}allow: {2}alice@localhost, \*@localhost\n/);
    assert.doesNotMatch(r.stdout, /token: /);

    r = await cli(["webhooks", "list", "--json"]);
    const listed = json<{ webhooks: { name: string; url: string; allow: string[] }[] }>(r);
    assert.deepEqual(
      listed.webhooks.map((w) => [w.name, w.url, w.allow]),
      [["deploybot", "http://127.0.0.1:9/hook2", ["alice@localhost", "*@localhost"]]],
    );
    r = await cli(["webhooks", "list"]);
    assert.equal(r.stdout, "NAME       URL                       ALLOW\ndeploybot  http://127.0.0.1:9/hook2  alice@localhost,*@localhost\n");

    r = await cli(["webhooks", "rotate-token", "deploybot", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const rotated = json<{ token: string }>(r);
    assert.notEqual(rotated.token, created.token);
    // The old token no longer gets a message in; the new one does.
    const post = (token: string) =>
      fetch(`${publicUrl}/api/v1/webhooks/deploybot/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ to: "alice@localhost", body: "deployed" }),
      });
    assert.equal((await post(created.token)).status, 401);
    assert.equal((await post(rotated.token)).status, 202);
    await alice.waitFor((el) => el.name === "message" && el.attrs.from === `deploybot@${DOMAIN}` && el.getChildText("body") === "deployed");

    r = await cli(["webhooks", "remove", "deploybot"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "removed webhook deploybot\n");
    r = await cli(["webhooks", "list"]);
    assert.equal(r.stdout, "no webhook targets\n");
    r = await cli(["webhooks", "remove", "deploybot"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /There is no webhook named deploybot/);
  });

  test("send, both ways: an SMS reaches the fake Twilio, a text from a number reaches the XMPP client", async () => {
    let r = await cli(["send", "alice@localhost", CONTACT, "Hello", "from", "the", "CLI"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^SMS queued from alice@localhost to \\${CONTACT} \\(id [^)]+\\)\\n$`));
    await waitUntil(() => twilio.created.some((m) => m.body === "Hello from the CLI"), { what: "the SMS at the fake Twilio", timeoutMs: 10_000 });
    const sms = twilio.created.find((m) => m.body === "Hello from the CLI")!;
    assert.equal(sms.from, ALICE_NUMBER);
    assert.equal(sms.to, CONTACT);

    r = await cli(["send", CONTACT, "alice@localhost", "Hi alice, from a phone", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const sent = json<{ id: string; direction: string; to: string; status: string }>(r);
    assert.equal(sent.direction, "to-xmpp");
    assert.equal(sent.to, "alice@localhost");
    const msg = await alice.waitFor((el) => el.name === "message" && el.getChildText("body") === "Hi alice, from a phone");
    assert.equal(msg.attrs.from, `${CONTACT}@${DOMAIN}`);

    // Refusals come from the same core path as real traffic.
    r = await cli(["send", "carol@localhost", CONTACT, "hi"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not linked to a phone number/);
    r = await cli(["send", CONTACT, "carol@localhost", "hi"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /carol@localhost is not linked to a number/);
    r = await cli(["send", "someone", "else", "hi"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /body\.from: must be a linked user's bare JID/);
  });

  test("dead-letters list and retry", async () => {
    let r = await cli(["dead-letters", "list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "no dead letters\n");

    // A user whose account does not exist on the XMPP server: the server bounces the delivery
    // (XMPP_MAX_BOUNCES=1), and it becomes a dead letter.
    assert.equal((await cli(["users", "link", "ghost@localhost", GHOST_NUMBER])).code, 0);
    r = await cli(["send", CONTACT, "ghost@localhost", "anyone there?", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const { id } = json<{ id: string }>(r);
    let letters: { id: string; messageId: string; queue: string; reason: string }[] = [];
    await waitUntil(
      async () => {
        letters = json<{ deadLetters: typeof letters }>(await cli(["dead-letters", "list", "--json"])).deadLetters;
        return letters.some((d) => d.messageId === id);
      },
      { what: "a dead letter", timeoutMs: 20_000 },
    );
    const dl = letters.find((d) => d.messageId === id)!;
    assert.equal(dl.queue, "to-xmpp");
    r = await cli(["dead-letters", "list"]);
    assert.match(r.stdout, /^ID +QUEUE +AT +FROM +TO +REASON\n/);
    assert.ok(r.stdout.includes(`${dl.id}  to-xmpp`), r.stdout);

    r = await cli(["dead-letters", "retry", dl.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `dead letter ${dl.id} queued again\n`);
    r = await cli(["dead-letters", "retry", "1-0"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No dead letter 1-0/);
    r = await cli(["dead-letters", "list", "--limit", "0"]);
    assert.equal(r.code, 2);

    assert.equal((await cli(["users", "unlink", "ghost@localhost"])).code, 0);
  });
});

describe("doctor", () => {
  test("a good setup: every check ok, exit 0; text output shows ok lines", async () => {
    const d = await doctor();
    assert.equal(d.code, 0, describeChecks(d.checks));
    assert.equal(d.ok, true);
    assert.deepEqual(
      d.checks.map((c) => c.name),
      ["configuration", "gateway", "redis", "xmpp", "twilio", "public-url", `number ${ALICE_NUMBER}`],
    );
    assert.ok(
      d.checks.every((c) => c.ok && !c.skipped),
      describeChecks(d.checks),
    );
    assert.match(d.check("redis").detail, /appendonly yes/);
    assert.match(d.check("xmpp").detail, /is connected/);

    const text = await cliProcess(["doctor", "--url", publicUrl], gatewayEnv());
    assert.equal(text.code, 0, text.stdout + text.stderr);
    assert.match(text.stdout, /^ok {4}configuration +valid/m);
    assert.match(text.stdout, new RegExp(`^ok {4}number \\${ALICE_NUMBER} +\\${ALICE_NUMBER} \\(linked to alice@localhost\\): incoming texts go to ${publicUrl}/twilio/sms \\(POST\\)$`, "m"));
    assert.match(text.stdout, /\nall checks passed\n$/);

    // Remote, without the gateway's configuration: what the gateway itself reports is checked.
    const remote = await cli(["doctor", "--json"], adminEnv());
    assert.equal(remote.code, 0, remote.stdout);
    const checks = json<{ checks: Check[] }>(remote).checks;
    assert.deepEqual(
      checks.map((c) => [c.name, c.skipped ? "skip" : c.ok ? "ok" : "FAIL"]),
      [
        ["configuration", "skip"],
        ["gateway", "ok"],
        ["redis", "skip"],
        ["xmpp", "ok"],
        ["twilio", "skip"],
        ["public-url", "skip"],
        ["numbers", "skip"],
      ],
    );
  });

  test("a wrong PUBLIC_URL: unreachable, or another service; the number's webhook then does not match it either", async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    let d = await doctor([], { PUBLIC_URL: nowhere });
    assert.equal(d.code, 1);
    const pub = d.check("public-url");
    assert.equal(pub.ok, false);
    assert.match(pub.detail, new RegExp(`PUBLIC_URL ${nowhere} is unreachable: .*ECONNREFUSED`));
    assert.match(pub.fix!, /PUBLIC_URL must be the address Twilio reaches this gateway at/);
    const num = d.check(`number ${ALICE_NUMBER}`);
    assert.equal(num.ok, false);
    assert.match(num.detail, new RegExp(`go to ${publicUrl}/twilio/sms \\(POST\\), not to ${nowhere}/twilio/sms`));
    assert.match(num.fix!, /^PUBLIC_URL does not answer as this gateway .*fix it first/);
    // --fix never points a number at a PUBLIC_URL that does not answer as this gateway.
    d = await doctor(["--fix"], { PUBLIC_URL: nowhere });
    assert.equal(d.check(`number ${ALICE_NUMBER}`).fixed, undefined);
    assert.equal(twilio.numbers(SID).find((n) => n.phone_number === ALICE_NUMBER)!.sms_url, `${publicUrl}/twilio/sms`);

    // Something else answers there (here: the fake Twilio).
    d = await doctor([], { PUBLIC_URL: twilio.url });
    assert.equal(d.check("public-url").ok, false);
    assert.match(d.check("public-url").detail, /answers 401 \(application\/json\), not like this gateway/);
  });

  test("Redis without AOF persistence", async () => {
    await redisCommand("CONFIG", "SET", "appendonly", "no");
    try {
      const d = await doctor();
      assert.equal(d.code, 1);
      const c = d.check("redis");
      assert.equal(c.ok, false);
      assert.match(c.detail, /does not persist to an append-only file \(appendonly no\)/);
      assert.match(c.fix!, /set appendonly yes \(redis-cli CONFIG SET appendonly yes, and in redis\.conf/);
      assert.ok(
        d.checks.filter((x) => x.name !== "redis").every((x) => x.ok),
        describeChecks(d.checks),
      );
    } finally {
      await redisCommand("CONFIG", "SET", "appendonly", "yes");
    }
    assert.equal((await doctor()).check("redis").ok, true);
  });

  test("a number whose webhook points elsewhere: found, explained, repaired by --fix", async () => {
    const number = twilio.numbers(SID).find((n) => n.phone_number === ALICE_NUMBER)!;
    number.sms_url = "https://old-app.example.com/sms";
    number.sms_method = "GET";
    let d = await doctor();
    assert.equal(d.code, 1);
    let c = d.check(`number ${ALICE_NUMBER}`);
    assert.equal(c.ok, false);
    assert.match(
      c.detail,
      new RegExp(`incoming texts to \\${ALICE_NUMBER} \\(linked to alice@localhost\\) go to https://old-app\\.example\\.com/sms \\(GET\\), not to ${publicUrl}/twilio/sms \\(POST\\)`),
    );
    assert.match(c.fix!, /run switchboard doctor --fix/);
    assert.equal(number.sms_url, "https://old-app.example.com/sms", "doctor without --fix changes nothing");

    const updatesBefore = twilio.requests.filter((r) => r.method === "POST" && r.path.includes("/IncomingPhoneNumbers/")).length;
    d = await doctor(["--fix"]);
    assert.equal(d.code, 0, describeChecks(d.checks));
    c = d.check(`number ${ALICE_NUMBER}`);
    assert.equal(c.ok, true);
    assert.match(c.fixed!, new RegExp(`set to ${publicUrl}/twilio/sms \\(POST\\); it was https://old-app\\.example\\.com/sms \\(GET\\)`));
    // Through the provider API, in Twilio's wire format.
    const updates = twilio.requests.filter((r) => r.method === "POST" && r.path.includes("/IncomingPhoneNumbers/"));
    assert.equal(updates.length, updatesBefore + 1);
    assert.deepEqual(updates.at(-1)!.form, { SmsUrl: `${publicUrl}/twilio/sms`, SmsMethod: "POST" });
    assert.equal(number.sms_url, `${publicUrl}/twilio/sms`);
    assert.equal(number.sms_method, "POST");

    d = await doctor();
    assert.equal(d.code, 0, describeChecks(d.checks));
    assert.equal(d.check(`number ${ALICE_NUMBER}`).fixed, undefined);
  });

  test("a Messaging Service that overrides the number's webhook is flagged; one that defers is fine", async () => {
    const service = twilio.addMessagingService(SID, { inboundRequestUrl: "https://studio.example.com/inbound" });
    twilio.addNumber(SID, BOB_NUMBER, { messagingServiceSid: service.sid }).sms_url = `${publicUrl}/twilio/sms`;
    assert.equal((await cli(["users", "link", "bob@localhost", BOB_NUMBER])).code, 0);
    try {
      let d = await doctor(["--fix"]);
      assert.equal(d.code, 1);
      const c = d.check(`number ${BOB_NUMBER}`);
      assert.equal(c.ok, false);
      assert.match(c.detail, new RegExp(`it is in Messaging Service ${service.sid} .*overrides the number's webhook: it sends them to https://studio\\.example\\.com/inbound`));
      assert.match(c.fix!, /Defer to sender's webhook/);
      assert.equal(c.fixed, undefined, "--fix never changes a service");

      service.use_inbound_webhook_on_number = true;
      d = await doctor();
      assert.equal(d.code, 0, describeChecks(d.checks));
      assert.match(d.check(`number ${BOB_NUMBER}`).detail, new RegExp(`Messaging Service ${service.sid} defers`));
    } finally {
      assert.equal((await cli(["users", "unlink", "bob@localhost"])).code, 0);
    }
  });

  test("a wrong Twilio Auth Token, and a configuration error naming the variable", async () => {
    const d = await doctor([], { TWILIO_AUTH_TOKEN: "not-the-token" });
    assert.equal(d.code, 1);
    assert.equal(d.check("twilio").ok, false);
    assert.match(d.check("twilio").detail, /^Twilio refused TWILIO_ACCOUNT_SID ACc{32} with this TWILIO_AUTH_TOKEN \(HTTP 401, Twilio 20003: Authenticate\)$/);
    assert.match(d.check("twilio").fix!, /^TWILIO_AUTH_TOKEN is wrong/);
    assert.equal(d.check(`number ${ALICE_NUMBER}`).skipped, true);

    const env = gatewayEnv();
    delete (env as Partial<typeof env>).XMPP_SECRET;
    const r = await cli(["doctor", "--json", "--url", publicUrl], env);
    assert.equal(r.code, 1);
    const c = json<{ checks: Check[] }>(r).checks[0]!;
    assert.equal(c.name, "configuration");
    assert.equal(c.ok, false);
    assert.match(c.detail, /XMPP_SECRET: is required/);
    assert.match(c.fix!, /^set XMPP_SECRET in the environment or in \.env/);
  });

  test("a wrong XMPP_SECRET, as a running gateway reports it in /readyz", async () => {
    // A second gateway, wrong secret: the server refuses its handshake before it is ever online (the
    // real process would exit naming XMPP_SECRET; in-process it stays up and reports it).
    const wrongPort = await freePort();
    const wrong = await startGateway({ ...gatewayEnv(), HTTP_PORT: String(wrongPort), XMPP_SECRET: "not-the-secret", INSTANCE_ID: "cli-wrong-secret", REDIS_URL: `${redis.url}/1` }, { listen: true });
    try {
      await waitUntil(() => wrong.fatal.length > 0, { what: "the refused handshake", timeoutMs: 10_000 });
      assert.match(wrong.fatal[0]!, /XMPP_SECRET/);
      const d = await doctor(["--url", `http://127.0.0.1:${wrongPort}`], { XMPP_SECRET: "not-the-secret" });
      assert.equal(d.code, 1);
      const c = d.check("xmpp");
      assert.equal(c.ok, false);
      assert.match(c.detail, /is not connected .*not-authorized/);
      assert.match(c.fix!, /^XMPP_SECRET does not match the component_secret in the server config/);
    } finally {
      await wrong.stop();
    }
    // The first gateway kept its connection.
    assert.equal(gw.gateway.xmppState().online, true);
  });

  test("doctor without the admin token, or with a wrong one: the gateway's status only, the component link not checked", async () => {
    // /readyz shows its details (the component link among them) to the admin token only.
    let d = await doctor([], { ADMIN_TOKEN: "" });
    assert.equal(d.check("gateway").ok, true, describeChecks(d.checks));
    assert.match(d.check("gateway").detail, /: status ready, no admin token \(SWITCHBOARD_ADMIN_TOKEN or ADMIN_TOKEN\), so \/readyz showed its status only$/);
    assert.equal(d.check("xmpp").skipped, true);
    assert.match(d.check("xmpp").detail, /^not checked: no admin token/);
    d = await doctor([], { SWITCHBOARD_ADMIN_TOKEN: "wrong-token-0123456789" });
    assert.match(d.check("gateway").detail, /status ready, the gateway did not accept the admin token/);
    assert.equal(d.check("xmpp").skipped, true);
    // With the token (the gateway's own ADMIN_TOKEN), the full report, as before.
    d = await doctor();
    assert.match(d.check("gateway").detail, /status ready, redis ok, provider twilio/);
    assert.equal(d.check("xmpp").ok, true);
  });

  test("no gateway running: doctor reads .env, tests the handshake itself, and explains a wrong secret", async () => {
    gatewayStopped = true;
    await gw.stop();
    // The gateway's configuration in a .env file; the environment wins over it.
    const dir = mkdtempSync(join(tmpdir(), "sb-cli-env-"));
    removeDirAtExit(dir);
    writeFileSync(
      join(dir, ".env"),
      Object.entries(gatewayEnv())
        .map(([k, v]) => `${k}=${v}`)
        .join("\n") + "\n",
    );

    let r = await cli(["doctor", "--json"], {}, dir);
    let body = json<{ checks: Check[] }>(r);
    const get = (name: string) => body.checks.find((c) => c.name === name)!;
    assert.match(get("configuration").detail, /^valid \(from .*\.env and the environment\)/);
    assert.equal(get("gateway").skipped, true, describeChecks(body.checks));
    assert.match(get("gateway").detail, new RegExp(`no gateway answers at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED`));
    assert.equal(get("xmpp").ok, true, describeChecks(body.checks));
    assert.match(get("xmpp").detail, /component handshake accepted for sms\.localhost/);
    // Links come from Redis now; the number is still checked at Twilio.
    assert.equal(get(`number ${ALICE_NUMBER}`).ok, true, describeChecks(body.checks));
    // PUBLIC_URL is this very gateway, which is down.
    assert.equal(get("public-url").ok, false);
    assert.equal(r.code, 1);

    r = await cli(["doctor", "--json"], { XMPP_SECRET: "not-the-secret" }, dir);
    body = json<{ checks: Check[] }>(r);
    assert.equal(get("xmpp").ok, false);
    assert.match(get("xmpp").detail, /handshake for sms\.localhost at xmpp:\/\/127\.0\.0\.1:\d+ failed: the XMPP server refused the component handshake for sms\.localhost \(not-authorized\)/);
    assert.match(get("xmpp").fix!, /^XMPP_SECRET does not match the component_secret in the server config/);

    // The client port instead of the component port.
    r = await cli(["doctor", "--json"], { XMPP_SERVICE: `xmpp://127.0.0.1:${server.c2sPort}` }, dir);
    body = json<{ checks: Check[] }>(r);
    assert.match(get("xmpp").detail, /opened a jabber:client stream: XMPP_SERVICE points at a client port/);
    assert.match(get("xmpp").fix!, /^XMPP_SERVICE must be xmpp:\/\/host:port of the server's component listener/);

    r = await cliProcess(["doctor"], { XMPP_SECRET: "not-the-secret" }, dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^FAIL {2}xmpp +handshake for sms\.localhost .*not-authorized.*\n +fix: XMPP_SECRET does not match/m);
  });
});
