// Provider trouble (issue 3, item 4; fault tests 7(c) and 7(d)): a real XMPP server and client, real
// Redis, the real gateway and twilio SDK against the fake Twilio, which answers 429/503 with
// Retry-After, drops connections before or after storing a message, and can fail its list endpoint.
// The assertion that matters is always the same: how many SMS the fake Twilio created.
import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { createRedisMessageStore } from "../../src/adapters/redis/message-store.js";
import type { MessageRecord } from "../../src/core/model/message.js";
import type { MessageStore } from "../../src/core/ports.js";
import { statusCallbackParams, type FakeTwilio, type RecordedRequest } from "../fakes/fake-twilio.js";
import type { TestGateway } from "../support/gateway.js";
import { startSmsStack, type SmsStack } from "../support/stack.js";
import { errorCondition, errorText, errorType, isErrorFor } from "../support/stanzas.js";
import { postSigned } from "../support/twilio-webhooks.js";
import { until } from "../support/wait.js";
import { xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";

const DOMAIN = "sms.localhost";
const SID = `AC${"2".repeat(32)}`;
const TOKEN = "fake-auth-token";
const PUBLIC = "https://gw.example.test";
const ALICE_NUMBER = "+15550001111";
const BOB_PHONE = "+15552223333";
const CONTACT = `${BOB_PHONE}@${DOMAIN}`;
// Small enough that "429 forever" gives up within a test, large enough for a 1 s Retry-After.
const DEADLINE_MS = 3000;

let stack: SmsStack;
let twilio: FakeTwilio;
let gw: TestGateway;
let alice: TestClient;
let store: MessageStore;
let seq = 0;

before(async () => {
  stack = await startSmsStack({
    domain: DOMAIN,
    accountSid: SID,
    authToken: TOKEN,
    publicUrl: PUBLIC,
    env: { OUTBOUND_RETRY_BASE_MS: "50", OUTBOUND_DEADLINE_MS: String(DEADLINE_MS) },
    users: [{ username: "alice", password: "alice-pw", resource: "phone", phone: ALICE_NUMBER }],
  });
  ({ twilio, gw } = stack);
  alice = stack.clients.alice!;
  store = createRedisMessageStore(gw.gateway.redis, { retentionS: 3600 });
});

after(() => stack?.stop());

// Injected failures a test did not use up must not leak into the next one.
afterEach(() => twilio.reset());

const errorOf = (el: StanzaElement) => ({ type: errorType(el), condition: errorCondition(el), text: errorText(el) });

/** How long, and how often, to look for what the gateway did. */
const POLL = { timeoutMs: 8000, intervalMs: 20 };

const createsOf = (body: string): RecordedRequest[] => twilio.requests.filter((r) => r.method === "POST" && r.form.Body === body);
const smsWith = (body: string) => twilio.created.filter((m) => m.body === body);

/** Sends a chat from alice; returns its stanza id and our message id (from the first create's StatusCallback). */
async function send(body: string, opts: { receipt?: boolean } = {}): Promise<{ stanzaId: string; id: string }> {
  const stanzaId = `pt-${++seq}`;
  await alice.send(xml("message", { to: CONTACT, type: "chat", id: stanzaId }, xml("body", {}, body), opts.receipt ? xml("request", { xmlns: "urn:xmpp:receipts" }) : undefined));
  const req = await until(() => createsOf(body)[0], { what: `a create for "${body}"`, ...POLL });
  const id = new URL(String(req.form.StatusCallback)).searchParams.get("id");
  assert.ok(id);
  return { stanzaId, id };
}

/** Resolves once the message was handed over (a SID is recorded) or reported. */
const settled = (id: string): Promise<MessageRecord> =>
  until(
    async () => {
      const r = await store.get(id);
      return r && (r.providerId !== undefined || r.status !== "pending") ? r : undefined;
    },
    { what: `message ${id} to settle`, ...POLL },
  );

test("7(c) 429 with Retry-After: 1, then 201 → one SMS, sent no sooner than Twilio asked", async () => {
  twilio.failNext(1, { status: 429, retryAfter: "1" });
  const body = "after the rate limit";
  const { stanzaId, id } = await send(body);
  const record = await settled(id);
  assert.equal(record.status, "queued");
  const [first, second, ...rest] = createsOf(body);
  assert.ok(first && second && rest.length === 0, "exactly two requests");
  assert.ok(second.at - first.at >= 950, `the retry came ${second.at - first.at} ms after the 429`);
  assert.equal(smsWith(body).length, 1);
  assert.equal(record.providerId, smsWith(body)[0]?.sid);
  await alice.expectNone(isErrorFor(stanzaId), 300);
});

test("7(c) 503, then 201 → one SMS, no error reply", async () => {
  twilio.failNext(1, { status: 503 });
  const body = "after the outage";
  const { stanzaId, id } = await send(body);
  await settled(id);
  assert.equal(createsOf(body).length, 2);
  assert.equal(smsWith(body).length, 1);
  await alice.expectNone(isErrorFor(stanzaId), 300);
});

test("7(d) Twilio stores the message, then drops the connection → still one SMS; its status callbacks still count", async () => {
  twilio.failNext(1, "store-then-drop");
  const body = "stored but unanswered";
  const { stanzaId, id } = await send(body, { receipt: true });
  const record = await settled(id);
  const [sms] = smsWith(body);
  assert.ok(sms);
  assert.equal(record.providerId, sms.sid, "adopted the message the lookup found");
  assert.equal(createsOf(body).length, 1, "never resent");
  assert.ok(twilio.listRequests().length >= 1, "looked it up");
  await alice.expectNone(isErrorFor(stanzaId), 300);

  // Twilio reports delivery later: the adopted SID leads to a receipt for the original stanza.
  const params = statusCallbackParams({ sid: sms.sid, status: "delivered", from: ALICE_NUMBER, to: BOB_PHONE, accountSid: SID });
  const res = await postSigned(gw.gateway.http, { authToken: TOKEN, publicUrl: PUBLIC }, `/twilio/status?id=${id}`, params);
  assert.equal(res.statusCode, 200);
  const receipt = await alice.waitFor((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === stanzaId);
  assert.equal(receipt.attrs.from, CONTACT);
});

test("7(d) the connection drops before Twilio stored anything → the lookup finds nothing, resent once", async () => {
  twilio.failNext(1, "drop");
  const body = "lost on the way";
  const { stanzaId, id } = await send(body);
  const record = await settled(id);
  assert.equal(createsOf(body).length, 2);
  assert.equal(smsWith(body).length, 1);
  assert.equal(record.providerId, smsWith(body)[0]?.sid);
  await alice.expectNone(isErrorFor(stanzaId), 300);
});

test("7(d) ambiguous and the lookup fails → not resent; the sender hears it may or may not have gone out", async () => {
  twilio.failNext(1, "store-then-drop");
  twilio.failListNext(10, { status: 500 });
  const body = "nobody can tell";
  const { stanzaId, id } = await send(body);
  const err = errorOf(await alice.waitFor(isErrorFor(stanzaId), 8000));
  assert.match(err.text, /may or may not have been sent/);
  assert.match(err.text, /not sent again/);
  assert.equal(err.type, "cancel", "the client must not resend blindly either");
  assert.equal((await store.get(id))?.status, "unknown");
  assert.equal(createsOf(body).length, 1);
  assert.equal(smsWith(body).length, 1);
});

test("a permanent 400 is tried exactly once", async () => {
  twilio.failNext(1, { status: 400, code: 21614, message: "'To' number is not a valid mobile number" });
  const body = "to a landline";
  const { stanzaId, id } = await send(body);
  const err = errorOf(await alice.waitFor(isErrorFor(stanzaId)));
  assert.equal(err.condition, "not-acceptable");
  assert.match(err.text, /Twilio 21614/);
  assert.equal((await store.get(id))?.status, "failed");
  await new Promise((r) => setTimeout(r, 300)); // a wrong retry would come after ~50 ms
  assert.equal(createsOf(body).length, 1);
  assert.equal(twilio.listRequests().length, 0, "a refusal is not ambiguous: no lookup");
});

test("the deadline: 429 forever → an error reply (wait / resource-constraint) with a readable text", async () => {
  twilio.failNext(10_000, { status: 429 });
  const body = "into the storm";
  const t0 = Date.now();
  const { stanzaId, id } = await send(body);
  const err = errorOf(await alice.waitFor(isErrorFor(stanzaId), DEADLINE_MS + 5000));
  const tookMs = Date.now() - t0;
  assert.deepEqual([err.type, err.condition], ["wait", "resource-constraint"]);
  assert.match(err.text, /Twilio 20429: too many requests/);
  assert.match(err.text, /not sent: the gateway gave up after \d+ tries/);
  assert.ok(tookMs < DEADLINE_MS + 2000, `gave up at the deadline (${tookMs} ms)`);
  assert.ok(createsOf(body).length >= 3, "retried meanwhile");
  assert.equal(smsWith(body).length, 0);
  assert.equal((await store.get(id))?.status, "failed");
});

test("the same text sent twice legitimately, the second attempt ambiguous → still exactly two SMS", async () => {
  // Dropped before storing: the lookup sees only the first SMS, which its own record owns → resend.
  const body = "see you at 8";
  const first = await send(body);
  await settled(first.id);
  twilio.failNext(1, "drop");
  await alice.send(xml("message", { to: CONTACT, type: "chat", id: "twice-2" }, xml("body", {}, body)));
  const secondReq = await until(() => createsOf(body)[1], { what: "the second message's create", ...POLL });
  const secondId = new URL(String(secondReq.form.StatusCallback)).searchParams.get("id")!;
  assert.notEqual(secondId, first.id);
  const second = await settled(secondId);
  assert.equal(smsWith(body).length, 2);
  assert.notEqual(second.providerId, (await store.get(first.id))?.providerId);

  // Stored, then dropped: the lookup sees both; it adopts the one no record owns.
  const other = "see you at 9";
  const a = await send(other);
  await settled(a.id);
  twilio.failNext(1, "store-then-drop");
  await alice.send(xml("message", { to: CONTACT, type: "chat", id: "twice-4" }, xml("body", {}, other)));
  const bReq = await until(() => createsOf(other)[1], { what: "the fourth message's create", ...POLL });
  const b = await settled(new URL(String(bReq.form.StatusCallback)).searchParams.get("id")!);
  assert.equal(createsOf(other).length, 2, "no resend");
  assert.equal(smsWith(other).length, 2);
  assert.equal(b.providerId, smsWith(other)[1]?.sid);
  await alice.expectNone((el) => el.attrs.type === "error" && ["twice-2", "twice-4"].includes(String(el.attrs.id)), 300);
});
