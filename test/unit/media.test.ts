import assert from "node:assert/strict";
import { test } from "node:test";
import { createMediaPreparer, MediaFetchError, mediaTypeOf, type FetchedMedia, type MediaFiles, type StoredMedia } from "../../src/core/flows/media.js";
import type { XmppDelivery } from "../../src/core/model/message.js";
import { RetryLater } from "../../src/core/ports.js";

test("mediaTypeOf: the allowlist, normalized; types a browser would run are refused", () => {
  assert.equal(mediaTypeOf("IMAGE/JPEG")?.contentType, "image/jpeg");
  assert.equal(mediaTypeOf("image/jpeg")?.kind.ext, "jpg");
  assert.equal(mediaTypeOf('text/plain; charset="UTF-8"')?.contentType, "text/plain; charset=utf-8");
  assert.equal(mediaTypeOf("text/plain; charset=<x>")?.contentType, "text/plain");
  assert.equal(mediaTypeOf("image/png; name=x.png")?.contentType, "image/png");
  for (const refused of ["text/html", "image/svg+xml", "application/x-msdownload", "application/octet-stream", "", undefined]) {
    assert.equal(mediaTypeOf(refused), undefined, String(refused));
  }
});

function harness(fetch: (url: string, signal?: AbortSignal) => Promise<FetchedMedia>) {
  const stored = new Map<string, StoredMedia>();
  const files: MediaFiles = {
    get: async (t) => stored.get(t),
    async put(t, meta, body, max) {
      let size = 0;
      for await (const c of body) size += c.byteLength;
      if (size > max) throw new Error("too big");
      const m = { ...meta, size };
      stored.set(t, m);
      return m;
    },
  };
  let calls = 0;
  const preparer = createMediaPreparer({
    fetcher: { fetch: (u, o) => (calls++, fetch(u, o?.signal)) },
    files,
    tokens: { reserve: async (key) => `T${key.replace(/[^A-Za-z0-9]/g, "")}`.padEnd(43, "x") },
    publicUrl: "https://gw.example",
    maxBytes: 1000,
    retentionS: 60,
    log: { info() {}, warn() {} },
    sleep: async () => undefined,
  });
  return { preparer, calls: () => calls };
}

const item: XmppDelivery = { kind: "chat", id: "MM1", from: "+1@sms", to: "a@b", body: "hi", mediaUrls: [], media: [{ url: "https://api.twilio.com/m", contentType: "image/gif" }], acceptedAt: 0 };

test("a permanent refusal is not retried; a transient one is, three times", async () => {
  const perm = harness(async () => {
    throw new MediaFetchError("HTTP 401", true);
  });
  const p = await perm.preparer.prepare(item, {});
  assert.equal(perm.calls(), 1);
  assert.ok(p.kind === "chat" && p.body === "hi\n[a picture could not be fetched from the provider (HTTP 401)]");
  assert.ok(p.kind === "chat" && p.media === undefined && p.mediaUrls.length === 0);

  const flaky = harness(async () => {
    throw new MediaFetchError("HTTP 503", false);
  });
  await flaky.preparer.prepare(item, {});
  assert.equal(flaky.calls(), 3);
});

test("the answer's content type wins over the webhook's; stopping leaves the item queued", async () => {
  const gif = harness(async () => ({
    contentType: "image/gif",
    body: (async function* () {
      yield new Uint8Array(10);
    })(),
    discard() {},
  }));
  const p = await gif.preparer.prepare(item, {});
  assert.ok(p.kind === "chat" && /^https:\/\/gw\.example\/media\/TMM10x+\/picture\.gif$/.test(p.mediaUrls[0]!));

  const ac = new AbortController();
  const stopping = harness(async () => {
    ac.abort();
    throw new MediaFetchError("aborted", false);
  });
  await assert.rejects(stopping.preparer.prepare(item, { signal: ac.signal }), RetryLater);
});

test("items without pending media pass untouched", async () => {
  const h = harness(async () => {
    throw new Error("not called");
  });
  const plain: XmppDelivery = { ...item, media: undefined };
  assert.equal(await h.preparer.prepare(plain, {}), plain);
  const receipt: XmppDelivery = { kind: "receipt", id: "x", from: "a", to: "b", receiptFor: "y" };
  assert.equal(await h.preparer.prepare(receipt, {}), receipt);
});
