// Media both ways (issue 5 item 2), end to end: a real XMPP server and client, real Redis, the fake
// Twilio serving media behind Basic auth and a redirect to a "signed S3 URL", the gateway re-hosting
// them under PUBLIC_URL/media/…
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createDiskMediaStore } from "../../src/adapters/media/disk-store.js";
import { createMediaFetcher } from "../../src/adapters/media/fetcher.js";
import { createTwilioMediaAccess } from "../../src/adapters/twilio/media-access.js";
import { connectRedis, type RedisClient } from "../../src/adapters/redis/client.js";
import { createRedisMediaTokens } from "../../src/adapters/redis/media-tokens.js";
import { createMediaPreparer } from "../../src/core/flows/media.js";
import type { XmppDelivery } from "../../src/core/model/message.js";
import { inboundSmsParams, type FakeMediaInput, type FakeTwilio } from "../fakes/fake-twilio.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { removeDirAtExit } from "../support/processes.js";
import { startSmsStack, type SmsStack } from "../support/stack.js";
import { OOB, oobUrls } from "../support/stanzas.js";
import { postSigned } from "../support/twilio-webhooks.js";
import { until } from "../support/wait.js";
import { xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";

const DOMAIN = "sms.localhost";
const SID = `AC${"2".repeat(32)}`;
const TOKEN = "fake-auth-token-media";
const PUBLIC = "https://gw.example.test/sb";
const ALICE_NUMBER = "+15550007777";
const THEM = "+15552224444";
const CONTACT = `${THEM}@${DOMAIN}`;
const MAX_BYTES = 64 * 1024;
const MEDIA_URL = new RegExp(`^${PUBLIC.replace(/[.]/g, "\\.")}/media/([A-Za-z0-9_-]{43})/([a-z]+\\.[a-z0-9]+)$`);

let stack: SmsStack;
let twilio: FakeTwilio;
let gw: TestGateway;
let alice: TestClient;
const mediaDir = mkdtempSync(join(tmpdir(), "sb-media-test-"));
removeDirAtExit(mediaDir);

before(async () => {
  stack = await startSmsStack({
    domain: DOMAIN,
    accountSid: SID,
    authToken: TOKEN,
    publicUrl: PUBLIC,
    env: { MEDIA_DIR: mediaDir, MEDIA_MAX_BYTES: String(MAX_BYTES) },
    users: [{ username: "alice", password: "alice-pw", resource: "phone", phone: ALICE_NUMBER }],
  });
  ({ twilio, gw } = stack);
  alice = stack.clients.alice!;
});

after(async () => {
  if (gw !== stack?.gw) await gw?.stop(); // a test started its own
  await stack?.stop();
});

/** Posts a signed inbound MMS (one webhook per call, fresh MessageSid) with the given media. */
async function inboundMms(body: string, media: { url: string; contentType: string }[], sid?: string): Promise<string> {
  const params = inboundSmsParams({ from: THEM, to: ALICE_NUMBER, body, accountSid: SID, media, ...(sid ? { sid } : {}) });
  const res = await postSigned(gw.gateway.http, { authToken: TOKEN, publicUrl: PUBLIC }, "/twilio/sms", params);
  assert.equal(res.statusCode, 200);
  return params.MessageSid!;
}

const messageWithId = (id: string) => (el: StanzaElement) => el.name === "message" && el.attrs.id === id && el.attrs.type !== "error";
const getMedia = (url: string) => gw.gateway.http.inject({ method: "GET", url: url.startsWith(PUBLIC) ? url.slice(PUBLIC.length) : url });
const png = (size: number) => Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(size - 8, 7)]);
const addMedia = (m: Omit<FakeMediaInput, "accountSid">) => twilio.addMedia({ accountSid: SID, ...m });
const filesIn = () => readdirSync(mediaDir).filter((n) => !n.startsWith("."));

describe("XMPP → MMS", () => {
  test("an uploaded file (body = URL = OOB) becomes MediaUrl with no Body; other text is the caption", async () => {
    /** The create request that carried `mediaUrl`, once it came. */
    const createFor = (mediaUrl: string) =>
      until(() => twilio.requests.find((r) => r.method === "POST" && r.path.endsWith("/Messages.json") && r.form.MediaUrl === mediaUrl), {
        what: `a create with MediaUrl ${mediaUrl}`,
        timeoutMs: 20_000,
        intervalMs: 20,
      });
    const upload = "https://upload.example.org/abc/cat.jpg";
    await alice.send(xml("message", { to: CONTACT, type: "chat", id: "up-1" }, xml("body", {}, upload), xml("x", { xmlns: OOB }, xml("url", {}, upload))));
    const create = await createFor(upload);
    assert.equal(create.form.Body, undefined, "no Body when only media");
    assert.equal(twilio.created.find((m) => m.num_media === "1" && m.body === "")?.num_media, "1");

    const dog = "https://upload.example.org/def/dog.png";
    await alice.send(xml("message", { to: CONTACT, type: "chat", id: "up-2" }, xml("body", {}, `look at this\n${dog}`), xml("x", { xmlns: OOB }, xml("url", {}, dog))));
    assert.equal((await createFor(dog)).form.Body, "look at this");
  });
});

describe("MMS → XMPP, re-hosted", () => {
  test("a picture arrives as OOB and body with the gateway's URL, serving the exact bytes", async () => {
    const bytes = png(20_000);
    const media = addMedia({ bytes, contentType: "image/png" });
    const before = twilio.requests.length;
    const id = await inboundMms("", [{ url: media.url, contentType: "image/png" }], media.messageSid);
    const msg = await alice.waitFor(messageWithId(id), 30_000);
    const [url = ""] = oobUrls(msg);
    assert.match(url, MEDIA_URL);
    assert.equal(msg.getChildText("body"), url, "body = URL alone, so clients show it inline");
    assert.equal(MEDIA_URL.exec(url)?.[2], "picture.png");

    // Credentials on the MediaUrl only; the signed URL it redirected to got none.
    const reqs = twilio.requests.slice(before).filter((r) => twilio.mediaRequests().includes(r));
    assert.equal(reqs.length, 2);
    assert.equal(reqs[0]!.path, new URL(media.url).pathname);
    assert.equal(reqs[0]!.headers.authorization, `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString("base64")}`);
    assert.ok(reqs[1]!.path.startsWith(`${media.signedPath}?X-Amz-`));
    assert.equal(reqs[1]!.headers.authorization, undefined, "the redirect target must not see the credentials");

    const res = await getMedia(url);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.rawPayload, bytes);
    assert.equal(res.headers["content-type"], "image/png");
    assert.equal(res.headers["content-length"], String(bytes.length));
    assert.equal(res.headers["x-content-type-options"], "nosniff");
    assert.equal(res.headers["content-disposition"], 'inline; filename="picture.png"');
    assert.match(String(res.headers["cache-control"]), /^private, max-age=\d+$/);
    const maxAge = Number(/max-age=(\d+)/.exec(String(res.headers["cache-control"]))?.[1]);
    assert.ok(maxAge > 29 * 86400 && maxAge <= 30 * 86400, `max-age ${maxAge} ≈ MEDIA_RETENTION`);
  });

  test("caption, two items (one chunked), 302 or no redirect: all re-hosted, caption first", async () => {
    const a = addMedia({ bytes: Buffer.from("BEGIN:VCARD\r\nEND:VCARD\r\n"), contentType: "text/vcard", redirect: 302 });
    const b = addMedia({ bytes: Buffer.alloc(30_000, 1), contentType: "video/mp4", redirect: false, chunked: true });
    const id = await inboundMms("two things", [
      { url: a.url, contentType: "text/vcard" },
      { url: b.url, contentType: "video/mp4" },
    ]);
    const msg = await alice.waitFor(messageWithId(id), 30_000);
    const urls = oobUrls(msg);
    assert.equal(urls.length, 2);
    assert.equal(msg.getChildText("body"), ["two things", ...urls].join("\n"));
    assert.deepEqual(
      urls.map((u) => MEDIA_URL.exec(u)?.[2]),
      ["contact.vcf", "video.mp4"],
    );
    const video = await getMedia(urls[1]!);
    assert.equal(video.rawPayload.length, 30_000);
    assert.equal(video.headers["content-type"], "video/mp4");
  });

  test("oversized media are not stored; the text arrives with a note", async () => {
    const filesBefore = filesIn().length;
    const declared = addMedia({ bytes: png(MAX_BYTES + 1), contentType: "image/png" }); // Content-Length says so
    const streamed = addMedia({ bytes: png(3 * MAX_BYTES), contentType: "image/png", chunked: true }); // only counting tells
    const id = await inboundMms("big ones", [
      { url: declared.url, contentType: "image/png" },
      { url: streamed.url, contentType: "image/png" },
    ]);
    const msg = await alice.waitFor(messageWithId(id), 30_000);
    assert.deepEqual(oobUrls(msg), []);
    const body = msg.getChildText("body") ?? "";
    assert.ok(body.startsWith("big ones\n"), body);
    assert.equal(body.match(/a picture was not shown: it is larger than this gateway's limit of 64 KB/g)?.length, 2, body);
    assert.equal(filesIn().length, filesBefore, "nothing kept");
    assert.deepEqual(
      readdirSync(mediaDir).filter((n) => n.startsWith(".tmp-")),
      [],
      "no temporary leftovers",
    );
  });

  test("a type outside the allowlist is not fetched, nor one the answer reveals", async () => {
    const exe = addMedia({ bytes: Buffer.from("MZ"), contentType: "application/x-msdownload" });
    const html = addMedia({ bytes: Buffer.from("<script>alert(1)</script>"), contentType: "text/html" }); // announced as a picture
    const before = twilio.mediaRequests().length;
    const id = await inboundMms("files", [
      { url: exe.url, contentType: "application/x-msdownload" },
      { url: html.url, contentType: "image/jpeg" },
    ]);
    const msg = await alice.waitFor(messageWithId(id), 30_000);
    assert.deepEqual(oobUrls(msg), []);
    const body = msg.getChildText("body") ?? "";
    assert.match(body, /files of type application\/x-msdownload are not accepted/);
    assert.match(body, /files of type text\/html are not accepted/);
    const fetched = twilio
      .mediaRequests()
      .slice(before)
      .map((r) => r.path.split("?")[0]);
    assert.ok(!fetched.includes(new URL(exe.url).pathname), "the announced executable was never requested");
  });

  test("media that cannot be fetched are tried again, then the text arrives with a note", async () => {
    const missing = `${twilio.url}/2010-04-01/Accounts/${SID}/Messages/MM${"0".repeat(32)}/Media/ME${"0".repeat(32)}`;
    const before = twilio.requests.length;
    const id = await inboundMms("lost picture", [{ url: missing, contentType: "image/jpeg" }]);
    const msg = await alice.waitFor(messageWithId(id), 30_000);
    assert.match(msg.getChildText("body") ?? "", /^lost picture\n\[a picture could not be fetched from the provider \(HTTP 404\)\]$/);
    assert.equal(twilio.requests.slice(before).filter((r) => r.path === new URL(missing).pathname).length, 3);
  });

  test("the media route: unknown tokens, wrong names and path tricks are 404", async () => {
    const media = addMedia({ bytes: png(100), contentType: "image/png" });
    const id = await inboundMms("", [{ url: media.url, contentType: "image/png" }]);
    const url = oobUrls(await alice.waitFor(messageWithId(id), 30_000))[0]!;
    const [, token] = MEDIA_URL.exec(url)!;
    assert.equal((await getMedia(url)).statusCode, 200);
    const probes = [
      `/media/${"A".repeat(43)}/picture.png`, // well-formed, unknown
      `/media/${token}/other.png`, // right token, wrong name
      `/media/${token}`,
      `/media/${token}.json/picture.png`, // the metadata file is not reachable
      `/media/..%2F..%2F..%2Fetc%2Fpasswd/picture.png`,
      `/media/${token}/..%2F..%2Fpackage.json`,
      `/media/../../package.json`,
      `/media/%2e%2e/picture.png`,
      `/media/${token}%00/picture.png`,
    ];
    for (const p of probes) {
      const res = await gw.gateway.http.inject({ method: "GET", url: p });
      assert.equal(res.statusCode, 404, p);
      assert.ok(!res.body.includes("root:"), p);
    }
  });
});

describe("re-hosting is idempotent (real Redis, one token per message and index)", () => {
  let client: RedisClient;
  before(async () => {
    client = await connectRedis(stack.redis.url, () => undefined, { commandTimeoutMs: 2000 });
  });
  after(() => client?.destroy());

  test("preparing the same item twice gives the same URL and fetches once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sb-media-idem-"));
    removeDirAtExit(dir);
    const fetcher = createMediaFetcher({ access: createTwilioMediaAccess({ apiOrigin: twilio.url, authTokenOf: async () => TOKEN }), timeoutMs: 5000 });
    const files = createDiskMediaStore(dir);
    const deps = { fetcher, files, tokens: createRedisMediaTokens(client), publicUrl: PUBLIC, maxBytes: MAX_BYTES, retentionS: 3600, log: { info() {}, warn() {} } };
    const media = addMedia({ bytes: png(500), contentType: "image/png" });
    const item: XmppDelivery = {
      kind: "chat",
      id: media.messageSid,
      from: CONTACT,
      to: "alice@localhost",
      body: "hi",
      mediaUrls: [],
      media: [{ url: media.url, contentType: "image/png", account: SID }],
      acceptedAt: Date.now(),
    };
    const countFetches = () => twilio.mediaRequests().filter((r) => r.path === new URL(media.url).pathname).length;

    const first = await createMediaPreparer(deps).prepare(item, {});
    // A redelivery after a crash: a new process (new preparer), the same Redis and disk.
    const second = await createMediaPreparer(deps).prepare(item, {});
    assert.equal(first.kind === "chat" && first.mediaUrls.length, 1);
    assert.deepEqual(second, first);
    assert.equal(countFetches(), 1);

    // A crash between reserving the token and storing the file: the next try fetches under that token.
    const other = { ...item, id: `MM${"9".repeat(32)}` };
    const token = await createRedisMediaTokens(client).reserve(`${SID}:${other.id}:0`, 3600);
    const third = await createMediaPreparer(deps).prepare(other, {});
    assert.ok(third.kind === "chat" && third.mediaUrls[0]!.includes(`/media/${token}/`));
    assert.equal(countFetches(), 2);
    await fetcher.close();
  });
});

describe("retention", () => {
  test("expired media answer 404 and the sweep deletes them", async () => {
    await gw.stop();
    gw = await startGateway(stack.env({ MEDIA_RETENTION: "1" }));
    await gw.waitOnline();
    const media = addMedia({ bytes: png(1000), contentType: "image/png" });
    const id = await inboundMms("short-lived", [{ url: media.url, contentType: "image/png" }], media.messageSid);
    const url = oobUrls(await alice.waitFor(messageWithId(id), 30_000))[0]!;
    const [, token] = MEDIA_URL.exec(url)!;
    await new Promise((r) => setTimeout(r, 1100));
    // (With a 1 s retention the periodic sweep runs every second too: it may have been first.)
    assert.equal((await getMedia(url)).statusCode, 404, "expired");
    await gw.gateway.sweepMedia();
    assert.ok(!filesIn().some((n) => n.startsWith(token!)), "bytes and metadata deleted");
    assert.equal((await getMedia(url)).statusCode, 404);
  });
});
