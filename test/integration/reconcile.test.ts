// Reconciliation with the provider (issue 17, must-have 4), with real processes: the gateway as its own
// process on real Redis and a real XMPP server, the fake Twilio posting its webhooks for real. Texts
// that reach Twilio while the gateway is down stay only in Twilio's list (their webhook fails, and
// Twilio never redelivers); once the gateway is back they arrive, each exactly once, also after another
// run and alongside texts that came by webhook; Twilio's list is read across pages. A sent message whose
// status callback never came gets its receipt or error reply from a run `switchboard reconcile` asks
// for; the CLI prints what a run found and refuses a `since` too far back; a bad RECONCILE_INTERVAL stops
// the start, naming it.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "../../src/cli/program.js";
import { startFakeTwilio, type FakeInbound, type FakeTwilio } from "../fakes/fake-twilio.js";
import { PROCESS_ADMIN_TOKEN, runMainToExit, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { removeDirAtExit } from "../support/processes.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { bodyOf, chat, errorCondition, errorText, isErrorFor, oobUrls } from "../support/stanzas.js";
import { waitUntil } from "../support/wait.js";
import { connectClient, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const DOMAIN = "sms.localhost";
const SECRET = "reconcile-secret";
const SID = `AC${"7".repeat(32)}`;
const TOKEN = "reconcile-token";
const ALICE_NUMBER = "+15550001111";
const THEM = "+15552223333";
const CONTACT = `${THEM}@${DOMAIN}`;
const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489", "hex");

let redis: RedisServer;
let server: XmppServer;
let twilio: FakeTwilio;
let gp: GatewayProcess;
let alice: TestClient;
const cwd = mkdtempSync(join(tmpdir(), "sb-reconcile-"));
removeDirAtExit(cwd);

const env = () => ({
  XMPP_SERVICE: server.componentService,
  XMPP_DOMAIN: DOMAIN,
  XMPP_SECRET: SECRET,
  REDIS_URL: redis.url,
  TWILIO_ACCOUNT_SID: SID,
  TWILIO_AUTH_TOKEN: TOKEN,
  TWILIO_API_URL: twilio.url,
  XMPP_RECONNECT_MIN_MS: "100",
  XMPP_RECONNECT_MAX_MS: "1000",
  INSTANCE_ID: "reconcile",
});
/** The same gateway each time: Twilio posts to its real port, which PUBLIC_URL names. */
const startGw = () => gp.start({ PUBLIC_URL: gp.url });

before(async () => {
  [redis, server, twilio] = await Promise.all([
    startRedis(),
    startXmppServer({ componentDomain: DOMAIN, componentSecret: SECRET, users: [{ username: "alice", password: "alice-pw" }] }),
    // Two messages a page: the gateway asks for 1,000, and must follow next_page_uri like with a big account.
    startFakeTwilio({ accounts: { [SID]: TOKEN }, maxPageSize: 2 }),
  ]);
  gp = await startGatewayProcess(env());
  await startGw();
  await gp.waitConnected();
  assert.equal((await gp.admin("PUT", `/api/v1/users/${server.userJid("alice")}`, { phone: ALICE_NUMBER })).status, 201);
  alice = await connectClient({ server, username: "alice", password: "alice-pw", resource: "phone" });
  // The number's messaging webhook, as `switchboard doctor --fix` would set it.
  twilio.addNumber(SID, ALICE_NUMBER).sms_url = `${gp.url}/twilio/sms`;
});

after(async () => {
  await alice?.stop();
  await gp?.terminate().catch(() => undefined);
  await Promise.allSettled([twilio?.stop(), server?.stop(), redis?.stop()]);
});

const chats = (body: string): StanzaElement[] => alice.received.filter((el) => el.name === "message" && el.attrs.type === "chat" && bodyOf(el).startsWith(body));

async function metric(name: string): Promise<number> {
  const res = await fetch(`${gp.url}/metrics`, { headers: { authorization: `Bearer ${PROCESS_ADMIN_TOKEN}` } });
  const line = (await res.text()).split("\n").find((l) => l.startsWith(name + " ") || l.startsWith(name.replace(/}$/, "") + "}"));
  return line ? Number(line.split(" ").pop()) : 0;
}

/** Nothing waiting toward XMPP: what was delivered is acknowledged, so a stop cannot put it back. */
const drained = () => waitUntil(async () => (await metric('switchboard_queue_depth{queue="to-xmpp"}')) === 0, { timeoutMs: 10_000, what: "an empty to-xmpp queue" });

/** Time for anything that should not come to arrive if it did. */
const settle = () => new Promise((r) => setTimeout(r, 1500));

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(args, { env: { SWITCHBOARD_URL: gp.url, SWITCHBOARD_ADMIN_TOKEN: PROCESS_ADMIN_TOKEN }, cwd, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

describe("texts that reached Twilio while the gateway was down", () => {
  const during: FakeInbound[] = [];

  test("arrive once the gateway is back, each exactly once, with the time they reached Twilio", async () => {
    // Two by webhook while it runs: they are in Twilio's list too.
    for (const i of [1, 2]) {
      const sent = await twilio.receiveSms({ from: THEM, to: ALICE_NUMBER, body: `by webhook ${i}` });
      assert.equal(sent.posted, true, `webhook answered ${sent.answer}`);
    }
    await alice.waitFor((el) => bodyOf(el) === "by webhook 2", 10_000);
    await drained();
    assert.equal(await gp.terminate(), 0);

    // Every instance is down: Twilio cannot deliver these webhooks, and will never try again.
    for (let i = 1; i <= 5; i++) during.push(await twilio.receiveSms({ from: THEM, to: ALICE_NUMBER, body: `during the outage ${i}` }));
    during.push(await twilio.receiveSms({ from: THEM, to: ALICE_NUMBER, body: "a picture during the outage", media: [{ contentType: "image/png", bytes: PNG }] }));
    // One to a number nobody is linked to: skipped, as its webhook would be.
    await twilio.receiveSms({ from: THEM, to: "+15559990000", body: "nobody's", url: `${gp.url}/twilio/sms` });
    assert.ok(
      during.every((d) => !d.posted),
      during.map((d) => d.answer).join(),
    );

    const listsBefore = twilio.listRequests().length;
    await startGw(); // reconciles at start
    for (const d of during) await alice.waitFor((el) => bodyOf(el).startsWith(d.resource.body), 20_000);
    await alice.expectNone((el) => bodyOf(el) === "nobody's", 1500);
    for (const body of ["by webhook 1", "by webhook 2", ...during.map((d) => d.resource.body)]) assert.equal(chats(body).length, 1, `${body}: exactly once`);

    for (const d of during) {
      const el = chats(d.resource.body)[0]!;
      assert.equal(el.attrs.id, d.sid, "the stanza id is the MessageSid, as for a webhook");
      assert.equal(el.attrs.from, CONTACT);
      assert.equal(el.getChild("delay", "urn:xmpp:delay")?.attrs.stamp, new Date(Date.parse(d.resource.date_sent!)).toISOString(), "XEP-0203: when it reached Twilio");
    }
    // The picture, fetched with the account's credentials like a webhook's MediaUrl, and re-hosted.
    const [url] = oobUrls(chats("a picture during the outage")[0]!);
    assert.ok(url?.startsWith(`${gp.url}/media/`), url);
    assert.deepEqual(Buffer.from(await (await fetch(url!)).arrayBuffer()), PNG);

    // Twilio's list was read a page at a time (two a page here), following next_page_uri.
    const pages = twilio.listRequests().slice(listsBefore);
    assert.ok(pages.length >= 5, `${pages.length} list requests for 9 texts, two a page`);
    assert.ok(pages.slice(1).every((r) => /PageToken=PA/.test(r.path)));
    assert.equal(await metric('switchboard_reconciled_total{direction="in",outcome="ingested"}'), 6);
    assert.equal(await metric('switchboard_reconciled_total{direction="in",outcome="duplicate"}'), 2);
    assert.equal(await metric('switchboard_reconciled_total{direction="in",outcome="unrouted"}'), 1);
    assert.ok(/reconciliation with the provider finished/.test(gp.log()), "one log line per run");
  });

  test("another run, from the CLI and further back, delivers none of them again", async () => {
    await drained();
    const run = await cli(["reconcile", "--since", "2h", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { complete: boolean; inbound: Record<string, number>; accounts: { account: string }[] };
    assert.equal(report.complete, true);
    assert.deepEqual(report.inbound, { listed: 9, ingested: 0, duplicate: 8, unrouted: 1, incomplete: 0 });
    assert.deepEqual(
      report.accounts.map((a) => a.account),
      [SID],
    );
    const text = await cli(["reconcile"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^inbound: 9 listed in 1 account\(s\): 0 taken in, 8 already received, 1 to unlinked numbers$/m);
    assert.match(text.stdout, /^statuses: 0 fetched/m);
    await settle();
    for (const d of during) assert.equal(chats(d.resource.body).length, 1);
  });

  test("a text that arrives while the gateway runs still comes by webhook, once", async () => {
    const sent = await twilio.receiveSms({ from: THEM, to: ALICE_NUMBER, body: "after the outage" });
    assert.equal(sent.posted, true);
    await alice.waitFor((el) => bodyOf(el) === "after the outage", 10_000);
    assert.equal((await cli(["reconcile", "--since", "10m"])).code, 0);
    await settle();
    assert.equal(chats("after the outage").length, 1);
  });
});

describe("a status callback that never came", () => {
  /** Sends from alice and returns the message Twilio created for it. */
  async function send(body: string, id: string) {
    await alice.send(chat(CONTACT, body, { id, receipt: true }));
    await waitUntil(() => twilio.created.some((m) => m.body === body), { timeoutMs: 10_000, what: `the create of ${body}` });
    return twilio.created.find((m) => m.body === body)!;
  }

  test("the receipt and the error reply come from a reconciliation", async () => {
    const delivered = await send("will be delivered", "rc-out-1");
    const failed = await send("will not be delivered", "rc-out-2");
    const slow = await send("still on its way", "rc-out-3");
    // The carrier reports; Twilio's callbacks to the gateway are lost.
    twilio.setStatus(delivered.sid, "delivered");
    twilio.setStatus(failed.sid, "undelivered", 30003);
    twilio.setStatus(slow.sid, "sent");

    const run = await cli(["reconcile", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const outbound = (JSON.parse(run.stdout) as { outbound: Record<string, number> }).outbound;
    assert.deepEqual(outbound, { checked: 3, applied: 2, unchanged: 0, pending: 1, notFound: 0, gaveUp: 0, failed: 0 });

    const receipt = await alice.waitFor((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "rc-out-1", 10_000);
    assert.equal(receipt.attrs.from, CONTACT);
    const error = await alice.waitFor(isErrorFor("rc-out-2"), 10_000);
    assert.equal(errorCondition(error), "recipient-unavailable");
    assert.match(errorText(error), /30003/);

    // Once final, never again: a second run sends no second receipt or error.
    twilio.setStatus(slow.sid, "delivered");
    const again = await cli(["reconcile", "--json"]);
    assert.deepEqual((JSON.parse(again.stdout) as { outbound: Record<string, number> }).outbound, { checked: 1, applied: 1, unchanged: 0, pending: 0, notFound: 0, gaveUp: 0, failed: 0 });
    await alice.waitFor((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "rc-out-3", 10_000);
    await settle();
    assert.equal(alice.received.filter((x) => x.getChild("received", "urn:xmpp:receipts")?.attrs.id === "rc-out-1").length, 1);
    assert.equal(alice.received.filter(isErrorFor("rc-out-2")).length, 1);
    assert.equal(await metric('switchboard_reconciled_total{direction="out",outcome="applied"}'), 3);
  });
});

describe("refused", () => {
  test("a --since the repeat check cannot cover, and one that is no time at all", async () => {
    const far = await cli(["reconcile", "--since", "30d"]);
    assert.equal(far.code, 1);
    assert.match(far.stderr, /since may be at most \d+ h ago: older texts could be delivered twice .*\[HTTP 400\]/);
    const bad = await cli(["reconcile", "--since", "yesterday"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--since: "yesterday" is neither a duration such as 6h/);
  });

  test("a RECONCILE_INTERVAL that would hammer the provider stops the start, naming it", async () => {
    const { code, stderr } = await runMainToExit({ ...env(), ADMIN_TOKEN: PROCESS_ADMIN_TOKEN, HTTP_PORT: "0", PUBLIC_URL: "https://gw.example.test", RECONCILE_INTERVAL: "5" });
    assert.equal(code, 2);
    assert.match(stderr, /RECONCILE_INTERVAL: must be 0 \(off\) or at least 10 seconds/);
  });
});
