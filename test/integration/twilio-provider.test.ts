import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { createTwilioProvider, type TwilioProvider } from "../../src/adapters/twilio/provider.js";
import { isTwilioSignature } from "../../src/adapters/twilio/webhooks.js";
import { TwilioTransportError, UndiciRequestClient } from "../../src/adapters/twilio/request-client.js";
import { ProviderError, type ProviderFailure, type SmsSendRequest } from "../../src/core/ports.js";
import { mapProviderFailure } from "../../src/core/policy/provider-errors.js";
import { inboundSmsParams, signTwilioRequest, startFakeTwilio, statusCallbackParams, type FakeTwilio } from "../fakes/fake-twilio.js";

const SID = "AC" + "0123456789abcdef".repeat(2);
const TOKEN = "test-auth-token-0123456789";
const PUBLIC = "https://gw.example.test/prefix";

let fake: FakeTwilio;
let provider: TwilioProvider;

before(async () => {
  fake = await startFakeTwilio({ accounts: { [SID]: TOKEN } });
  // A trailing slash must not produce `//twilio/status`.
  provider = createTwilioProvider({ accountSid: SID, authToken: TOKEN, apiBaseUrl: fake.url, publicUrl: PUBLIC + "/", timeoutMs: 500 });
});
after(async () => {
  await provider.close();
  await fake.stop();
});
beforeEach(() => fake.reset());

const req = (over: Partial<SmsSendRequest> = {}): SmsSendRequest => ({
  id: "01J0000000000000000000ABCD",
  from: "+15550001111",
  to: "+15552223333",
  body: "hi é & =",
  mediaUrls: [],
  ...over,
});

async function failureOf(p: Promise<unknown>): Promise<ProviderFailure> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ProviderError, `expected ProviderError, got ${String(e)}`);
    return e.failure;
  }
  assert.fail("send did not fail");
}

test("send: the exact request Twilio receives", async () => {
  const res = await provider.send(req({ mediaUrls: ["https://m.example.test/1.jpg", "https://m.example.test/2.jpg"] }));
  assert.match(res.providerId, /^SM[0-9a-f]{32}$/);
  assert.equal(res.status, "queued");

  const [r] = fake.requests;
  assert.ok(r);
  assert.equal(r.method, "POST");
  assert.equal(r.path, `/2010-04-01/Accounts/${SID}/Messages.json`);
  assert.equal(r.headers.authorization, "Basic " + Buffer.from(`${SID}:${TOKEN}`).toString("base64"));
  assert.equal(r.headers["content-type"], "application/x-www-form-urlencoded");
  assert.equal(r.headers.accept, "application/json");
  assert.match(String(r.headers["user-agent"]), /^twilio-node\/6\.2\.0 /);
  assert.deepEqual(r.form, {
    To: "+15552223333",
    StatusCallback: `${PUBLIC}/twilio/status?id=01J0000000000000000000ABCD`,
    From: "+15550001111",
    Body: "hi é & =",
    MediaUrl: ["https://m.example.test/1.jpg", "https://m.example.test/2.jpg"],
  });
  // qs with arrayFormat "repeat", RFC 3986 encoding (spaces as %20), as the SDK itself sends.
  assert.match(r.rawBody, /MediaUrl=https%3A%2F%2Fm\.example\.test%2F1\.jpg&MediaUrl=https%3A%2F%2Fm\.example\.test%2F2\.jpg/);
  assert.match(r.rawBody, /Body=hi%20%C3%A9%20%26%20%3D/);
  assert.equal(fake.created[0]?.sid, res.providerId);
});

test("send: no MediaUrl key without media; the id is URL-encoded in the callback", async () => {
  await provider.send(req({ id: "a b&c" }));
  const form = fake.requests[0]?.form ?? {};
  assert.equal("MediaUrl" in form, false);
  assert.equal(form["StatusCallback"], `${PUBLIC}/twilio/status?id=a%20b%26c`);
});

test("400 21211 → permanent with code and Twilio's message", async () => {
  const f = await failureOf(provider.send(req({ to: "+1555" })));
  assert.deepEqual(f, { kind: "permanent", code: 21211, httpStatus: 400, message: "The 'To' number +1555 is not a valid phone number." });
  assert.equal(mapProviderFailure(f, { to: "+1555" }).text, "Twilio 21211: '+1555' is not a valid phone number");
});

test("429 → retry", async () => {
  fake.failNext(1, { status: 429 });
  const f = await failureOf(provider.send(req()));
  assert.deepEqual([f.kind, f.code, f.httpStatus], ["retry", 20429, 429]);
  // autoRetry is off: exactly one attempt reached Twilio.
  assert.equal(fake.requests.length, 1);
});

test("503 → retry, 500 → ambiguous", async () => {
  fake.failNext(1, { status: 503 });
  assert.equal((await failureOf(provider.send(req()))).kind, "retry");
  fake.failNext(1, { status: 500 });
  const f = await failureOf(provider.send(req()));
  assert.deepEqual([f.kind, f.code, f.httpStatus], ["ambiguous", 20500, 500]);
});

test("a hanging Twilio → ambiguous after the timeout", async () => {
  fake.failNext(1, "hang");
  const t0 = Date.now();
  const f = await failureOf(provider.send(req()));
  assert.equal(f.kind, "ambiguous");
  assert.match(f.message, /UND_ERR_HEADERS_TIMEOUT/);
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(fake.requests.length, 1);
});

test("a dropped connection after sending → ambiguous", async () => {
  fake.failNext(1, "drop");
  const f = await failureOf(provider.send(req()));
  assert.equal(f.kind, "ambiguous");
});

test("wrong token → 401 20003, permanent", async () => {
  const bad = createTwilioProvider({ accountSid: SID, authToken: "wrong", apiBaseUrl: fake.url, publicUrl: PUBLIC });
  try {
    const f = await failureOf(bad.send(req()));
    assert.deepEqual(f, { kind: "permanent", code: 20003, httpStatus: 401, message: "Authenticate" });
    assert.equal(mapProviderFailure(f).condition, "internal-server-error");
  } finally {
    await bad.close();
  }
});

test("Twilio unreachable (connection refused) → retry", async () => {
  // A port that was just free: nothing listens there.
  const port = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const down = createTwilioProvider({ accountSid: SID, authToken: TOKEN, apiBaseUrl: `http://127.0.0.1:${port}`, publicUrl: PUBLIC });
  try {
    const f = await failureOf(down.send(req()));
    assert.equal(f.kind, "retry");
    assert.match(f.message, /ECONNREFUSED/);
  } finally {
    await down.close();
  }
});

test("a stopped fake (ECONNREFUSED) → retry", async () => {
  const other = await startFakeTwilio({ accounts: { [SID]: TOKEN } });
  const p = createTwilioProvider({ accountSid: SID, authToken: TOKEN, apiBaseUrl: other.url, publicUrl: PUBLIC });
  try {
    await p.send(req());
    await other.stop();
    const f = await failureOf(p.send(req()));
    assert.equal(f.kind, "retry");
  } finally {
    await p.close();
  }
});

test("UndiciRequestClient: base URL keeps path and query; transport errors are tagged", async () => {
  const c = new UndiciRequestClient({ baseUrl: "http://127.0.0.1:9/mount/" });
  assert.equal(c.resolveUrl("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=5"), "http://127.0.0.1:9/mount/2010-04-01/Accounts/AC1/Messages.json?PageSize=5");
  await assert.rejects(
    c.request({ method: "get", uri: "https://api.twilio.com/x" }),
    (e: unknown) => e instanceof TwilioTransportError && e.kind === "not-sent" && e.safeToRetry && e.code === "ECONNREFUSED",
  );
  await c.close();
});

test("UndiciRequestClient: fetch through the SDK parses JSON like axios", async () => {
  const sent = await provider.send(req());
  const c = new UndiciRequestClient({ baseUrl: fake.url });
  const res = await c.request<unknown>({
    method: "get",
    uri: `https://api.twilio.com/2010-04-01/Accounts/${SID}/Messages/${sent.providerId}.json`,
    username: SID,
    password: TOKEN,
  });
  await c.close();
  assert.equal(res.statusCode, 200);
  const body = res.body as { sid: string; num_segments: unknown; date_created: string };
  assert.equal(body.sid, sent.providerId);
  assert.equal(body.num_segments, "1");
  assert.match(body.date_created, /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
  assert.match(String(res.headers["content-type"]), /application\/json/);
});

test("the signature check: SDK-signed params for the public URL", () => {
  const url = "https://gw.example.test/twilio/sms";
  const params = inboundSmsParams({
    from: "+15552223333",
    to: "+15550001111",
    body: "hello",
    accountSid: SID,
    media: [{ url: "https://api.twilio.com/2010-04-01/Accounts/x/Messages/y/Media/z", contentType: "image/jpeg" }],
  });
  assert.equal(params["NumMedia"], "1");
  assert.equal(params["SmsStatus"], "received");
  assert.match(params["MessageSid"] ?? "", /^MM[0-9a-f]{32}$/);
  const sig = signTwilioRequest(TOKEN, url, params);
  assert.equal(isTwilioSignature(TOKEN, sig, url, params), true);
  assert.equal(isTwilioSignature(TOKEN, sig, url, { ...params, Body: "hellO" }), false);
  assert.equal(isTwilioSignature(TOKEN, sig, "http://gw.example.test/twilio/sms", params), false);
  assert.equal(isTwilioSignature(TOKEN, undefined, url, params), false);
  assert.equal(isTwilioSignature(TOKEN, "", url, params), false);

  const status = statusCallbackParams({ sid: "SM" + "a".repeat(32), status: "undelivered", errorCode: 30003, from: "+1", to: "+2", accountSid: SID });
  const statusUrl = `${PUBLIC}/twilio/status?id=01J`;
  assert.equal(isTwilioSignature(TOKEN, signTwilioRequest(TOKEN, statusUrl, status), statusUrl, status), true);
  assert.equal(status["ErrorCode"], "30003");
});

test("fake Twilio: required parameters and wrong account", async () => {
  const auth = "Basic " + Buffer.from(`${SID}:${TOKEN}`).toString("base64");
  const post = (sid: string, body: string) =>
    fetch(`${fake.url}/2010-04-01/Accounts/${sid}/Messages.json`, {
      method: "POST",
      headers: { authorization: auth, "content-type": "application/x-www-form-urlencoded" },
      body,
    }).then(async (r) => ({ status: r.status, json: (await r.json()) as { code: number; message: string; more_info: string; status: number } }));
  assert.deepEqual((await post(SID, "From=%2B15550001111&Body=x")).json, {
    code: 21604,
    message: "A 'To' phone number is required.",
    more_info: "https://www.twilio.com/docs/errors/21604",
    status: 400,
  });
  assert.equal((await post(SID, "To=%2B15552223333&Body=x")).json.code, 21603);
  assert.equal((await post(SID, "To=%2B15552223333&From=%2B15550001111")).json.code, 21602);
  assert.equal((await post("AC" + "f".repeat(32), "To=%2B15552223333&From=%2B15550001111&Body=x")).status, 404);
  const ok = await post(SID, "To=%2B15552223333&MessagingServiceSid=MG1&Body=x");
  assert.equal(ok.status, 201);
  const reqs = await fake.waitForRequests(5, 100);
  assert.equal(reqs.length, 5);
  await assert.rejects(fake.waitForRequests(6, 50), /5 of 6/);
});

test("429 / 503 with Retry-After → retry with retryAfterMs (seconds or HTTP-date)", async () => {
  fake.failNext(1, { status: 429, retryAfter: "2" });
  const f = await failureOf(provider.send(req()));
  assert.deepEqual([f.kind, f.retryAfterMs], ["retry", 2000]);
  fake.failNext(1, { status: 503, retryAfter: new Date(Date.now() + 30_000).toUTCString() });
  const g = await failureOf(provider.send(req()));
  assert.equal(g.kind, "retry");
  assert.ok(g.retryAfterMs !== undefined && g.retryAfterMs > 25_000 && g.retryAfterMs <= 30_000, String(g.retryAfterMs));
  fake.failNext(1, { status: 429 });
  assert.equal((await failureOf(provider.send(req()))).retryAfterMs, undefined, "no header, no value");
});

test("store-then-drop → ambiguous, and the message exists at Twilio", async () => {
  fake.failNext(1, "store-then-drop");
  const f = await failureOf(provider.send(req()));
  assert.equal(f.kind, "ambiguous");
  assert.equal(fake.created.length, 1);
});

test("lookup: finds the unclaimed match through the SDK's list, newest first, filtered by To/From", async () => {
  const since = Date.now();
  const earlier = await provider.send(req({ body: "same" }));
  await provider.send(req({ body: "same", to: "+15559998888" })); // another conversation
  fake.failNext(1, "store-then-drop");
  await failureOf(provider.send(req({ body: "same" })));
  const mine = fake.created[2]!.sid;
  const claimed = new Set([earlier.providerId]);
  const r = await provider.lookup({ ...req({ body: "same" }), since, isClaimed: async (sid) => claimed.has(sid) });
  assert.deepEqual(r, { found: { providerId: mine, status: "queued" } });
  const list = fake.listRequests();
  assert.equal(list.length, 1);
  const q = new URL(list[0]!.path, "http://x").searchParams;
  assert.deepEqual([q.get("To"), q.get("From"), q.get("PageSize")], ["+15552223333", "+15550001111", "50"]);
  assert.equal(q.has("DateSent>"), false, "date_sent is empty while queued: never filtered on");

  claimed.add(mine);
  assert.deepEqual(await provider.lookup({ ...req({ body: "same" }), since, isClaimed: async (sid) => claimed.has(sid) }), { notFound: true });
  assert.deepEqual(await provider.lookup({ ...req({ body: "different" }), since, isClaimed: async () => false }), { notFound: true });
});

test("lookup: a failing list → unknown with the reason", async () => {
  fake.failListNext(1, { status: 500 });
  const r = await provider.lookup({ ...req(), since: Date.now(), isClaimed: async () => false });
  assert.ok("unknown" in r && /internal server error/i.test(r.unknown), JSON.stringify(r));
  fake.failListNext(1, "drop");
  const d = await provider.lookup({ ...req(), since: Date.now(), isClaimed: async () => false });
  assert.ok("unknown" in d, JSON.stringify(d));
});

test("fake Twilio: the list resource has Twilio's paging fields", async () => {
  for (let i = 0; i < 3; i++) await provider.send(req({ body: `page ${i}` }));
  const auth = "Basic " + Buffer.from(`${SID}:${TOKEN}`).toString("base64");
  const res = await fetch(`${fake.url}/2010-04-01/Accounts/${SID}/Messages.json?To=%2B15552223333&PageSize=2`, { headers: { authorization: auth } });
  const body = (await res.json()) as Record<string, unknown> & { messages: { body: string }[] };
  assert.deepEqual(
    body.messages.map((m) => m.body),
    ["page 2", "page 1"],
    "newest first",
  );
  assert.equal(body.page, 0);
  assert.equal(body.page_size, 2);
  assert.match(String(body.uri), /^\/2010-04-01\/Accounts\/AC[0-9a-f]{32}\/Messages\.json\?To=%2B15552223333&PageSize=2&Page=0$/);
  assert.equal(body.first_page_uri, body.uri);
  assert.equal(body.previous_page_uri, null);
  assert.match(String(body.next_page_uri), /Page=1&PageToken=PA/);
  const next = (await (await fetch(`${fake.url}${String(body.next_page_uri)}`, { headers: { authorization: auth } })).json()) as { messages: { body: string }[]; next_page_uri: unknown };
  assert.deepEqual(
    next.messages.map((m) => m.body),
    ["page 0"],
  );
  assert.equal(next.next_page_uri, null);
});
