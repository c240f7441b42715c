// Twilio's message log as reconciliation reads it (src/adapters/twilio/message-log.ts): the real SDK
// against the fake Twilio's Messages list (DateSent filters by date only, PageSize, PageToken paging,
// newest first), its Media list and its fetch, for the gateway's account and a user's own.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createTwilioMessageLog } from "../../src/adapters/twilio/message-log.js";
import { createTwilioProvider } from "../../src/adapters/twilio/provider.js";
import { ProviderError, type LoggedInboundSms } from "../../src/core/ports.js";
import { startFakeTwilio, type FakeTwilio } from "../fakes/fake-twilio.js";

const SID = `AC${"a".repeat(32)}`;
const TOKEN = "log-auth-token";
const OWN = `AC${"b".repeat(32)}`;
const OWN_TOKEN = "own-auth-token";
const OURS = "+15550001111";
const THEM = "+15552223333";
const HOUR = 3_600_000;
/** Midnight UTC two days ago: every time below falls on a known day, whatever the clock says. */
const DAY = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 2 * 86_400_000;

let twilio: FakeTwilio;
let log: ReturnType<typeof createTwilioMessageLog>;

before(async () => {
  twilio = await startFakeTwilio({ accounts: { [SID]: TOKEN, [OWN]: OWN_TOKEN } });
  log = createTwilioMessageLog({ accountSid: SID, authToken: TOKEN, apiBaseUrl: twilio.url, pageSize: 2, authTokenOf: async (sid) => (sid === OWN ? OWN_TOKEN : undefined) });
});

after(async () => {
  await log?.close();
  await twilio?.stop();
});

async function all(q: { account?: string; since: number }): Promise<LoggedInboundSms[]> {
  const out: LoggedInboundSms[] = [];
  for await (const m of log.listInbound(q)) out.push(m);
  return out;
}

test("inbound texts since a moment: newest first, paged through next_page_uri, the day's earlier ones and outbound ones left out", async () => {
  twilio.reset();
  // The day before, earlier the same day, and later: the fake (like Twilio's documentation) filters by day only.
  for (const [h, body] of [
    [-2, "the day before"],
    [10, "same day, too early"],
    [13, "one"],
    [14, "two"],
    [15, "three"],
    [16, "four"],
    [40, "next day"],
  ] as const) {
    await twilio.receiveSms({ from: THEM, to: OURS, body, at: new Date(DAY + h * HOUR) });
  }
  // Ours, sent meanwhile: in the same list, not inbound.
  const provider = createTwilioProvider({ accountSid: SID, authToken: TOKEN, apiBaseUrl: twilio.url, publicUrl: "https://gw.example.test" });
  await provider.send({ id: "01OUT", from: OURS, to: THEM, body: "outbound", mediaUrls: [] });
  await provider.close();

  const since = DAY + 12 * HOUR;
  const got = await all({ since });
  assert.deepEqual(
    got.map((m) => m.body),
    ["next day", "four", "three", "two", "one"],
  );
  assert.ok(
    got.every((m) => m.account === SID && m.from === THEM && m.to === OURS && m.complete && m.media.length === 0),
    JSON.stringify(got[0]),
  );
  assert.equal(got.at(-1)?.sentAt, since + HOUR);

  const lists = twilio.listRequests().map((r) => new URL(r.path, "http://x").searchParams);
  assert.equal(lists[0]?.get("DateSent>"), new Date(since).toISOString().replace(".000Z", "Z"), "the SDK sends a date-time; only its date counts at Twilio");
  assert.equal(lists[0]?.get("PageSize"), "2");
  assert.equal(lists.length, 3, "six on or after that day, two a page (the outbound one has no date_sent yet)");
  assert.ok(
    lists.slice(1).every((q) => q.get("PageToken")?.startsWith("PA")),
    "later pages follow next_page_uri, with its PageToken",
  );
});

test("the walk stops at the first page wholly before the window", async () => {
  twilio.reset();
  for (let i = 0; i < 10; i++) await twilio.receiveSms({ from: THEM, to: OURS, body: `old ${i}`, at: new Date(DAY + HOUR + i * 60_000) });
  await twilio.receiveSms({ from: THEM, to: OURS, body: "new", at: new Date(DAY + 20 * HOUR) });
  const got = await all({ since: DAY + 19 * HOUR });
  assert.deepEqual(
    got.map((m) => m.body),
    ["new"],
  );
  assert.equal(twilio.listRequests().length, 2, "the first page (new + old 9), then one page of old ones, and no more");
});

test("an MMS comes with its media as its webhook names them; one still being received is marked incomplete", async () => {
  twilio.reset();
  const png = Buffer.from("89504e470d0a1a0a", "hex");
  const mms = await twilio.receiveSms({ from: THEM, to: OURS, body: "a picture", media: [{ contentType: "image/png", bytes: png }], at: new Date(DAY + 13 * HOUR) });
  await twilio.receiveSms({ from: THEM, to: OURS, body: "", media: [{ contentType: "image/jpeg", bytes: png }], at: new Date(DAY + 14 * HOUR), status: "receiving" });
  const got = await all({ since: DAY });
  assert.deepEqual(
    got.map((m) => [m.body, m.complete]),
    [
      ["", false],
      ["a picture", true],
    ],
  );
  assert.deepEqual(got[1]?.media, [{ url: mms.media[0]!.url, contentType: "image/png" }]);
  assert.match(got[1]!.media[0]!.url, new RegExp(`^${twilio.url}/2010-04-01/Accounts/${SID}/Messages/MM[0-9a-f]{32}/Media/ME[0-9a-f]{32}$`));
});

test("a user's own account is read with its own credentials; an account without stored credentials fails saying so", async () => {
  twilio.reset();
  await twilio.receiveSms({ accountSid: OWN, from: THEM, to: "+15550009999", body: "to a byo number", at: new Date(DAY + 13 * HOUR) });
  await twilio.receiveSms({ from: THEM, to: OURS, body: "to the gateway's", at: new Date(DAY + 13 * HOUR) });
  const own = await all({ account: OWN, since: DAY });
  assert.deepEqual(
    own.map((m) => [m.account, m.body]),
    [[OWN, "to a byo number"]],
  );
  const auth = twilio.listRequests().at(-1)!.headers.authorization;
  assert.equal(auth, `Basic ${Buffer.from(`${OWN}:${OWN_TOKEN}`).toString("base64")}`);
  await assert.rejects(all({ account: `AC${"c".repeat(32)}`, since: DAY }), (err: unknown) => err instanceof ProviderError && /no credentials are stored/.test(err.message));
});

test("fetchStatus: the status and error code Twilio has now; undefined for a message it does not have; a refused request throws", async () => {
  twilio.reset();
  const provider = createTwilioProvider({ accountSid: SID, authToken: TOKEN, apiBaseUrl: twilio.url, publicUrl: "https://gw.example.test" });
  const { providerId } = await provider.send({ id: "01OUT2", from: OURS, to: THEM, body: "status?", mediaUrls: [] });
  await provider.close();
  assert.deepEqual(await log.fetchStatus({ providerId }), { status: "queued" });
  twilio.setStatus(providerId, "undelivered", 30003);
  assert.deepEqual(await log.fetchStatus({ providerId, account: SID }), { status: "undelivered", errorCode: 30003 });
  assert.equal(await log.fetchStatus({ providerId: `SM${"0".repeat(32)}` }), undefined);
  const wrong = createTwilioMessageLog({ accountSid: SID, authToken: "wrong", apiBaseUrl: twilio.url });
  await assert.rejects(wrong.fetchStatus({ providerId }), (err: unknown) => err instanceof ProviderError && err.failure.httpStatus === 401);
  await wrong.close();
});
