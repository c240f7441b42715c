import assert from "node:assert/strict";
import { test } from "node:test";
import { LOOKUP_SKEW_MS, pickOwnMessage, rankCandidates, sameContent, type ProviderMessageSummary } from "../../src/core/policy/lookup-match.js";
import type { SmsLookupRequest } from "../../src/core/ports.js";

const SINCE = Date.parse("2026-01-01T12:00:00.700Z");

const msg = (providerId: string, over: Partial<ProviderMessageSummary> = {}): ProviderMessageSummary => ({
  providerId,
  status: "queued",
  body: "hello",
  mediaCount: 0,
  createdAt: SINCE + 1000,
  ...over,
});

const req = (claimed: string[] = [], over: Partial<SmsLookupRequest> = {}): SmsLookupRequest => ({
  id: "01MSG",
  from: "+15550001111",
  to: "+15552223333",
  body: "hello",
  mediaUrls: [],
  since: SINCE,
  isClaimed: async (sid) => claimed.includes(sid),
  ...over,
});

test("content: same body and media count; Twilio's trial prefix is tolerated", () => {
  assert.ok(sameContent({ body: "hello", mediaCount: 0 }, { body: "hello", mediaUrls: [] }));
  assert.ok(sameContent({ body: "Sent from your Twilio trial account - hello", mediaCount: 0 }, { body: "hello", mediaUrls: [] }));
  assert.ok(!sameContent({ body: "hello!", mediaCount: 0 }, { body: "hello", mediaUrls: [] }));
  assert.ok(!sameContent({ body: "hello", mediaCount: 1 }, { body: "hello", mediaUrls: [] }), "media count differs");
  assert.ok(sameContent({ body: "", mediaCount: 2 }, { body: "", mediaUrls: ["https://a/1", "https://a/2"] }));
});

test("ranking: in the window oldest first, then the skew margin nearest first; older ones and other texts never", () => {
  const list = [
    msg("SMnewest", { createdAt: SINCE + 5000 }),
    msg("SMfirst", { createdAt: SINCE + 200 }),
    msg("SMother", { createdAt: SINCE + 300, body: "other text" }),
    // Twilio dates have one-second resolution: a message created 0.7 s "before" our request is still ours.
    msg("SMsecond", { createdAt: SINCE - 700 }),
    msg("SMmargin", { createdAt: SINCE - 30_000 }),
    msg("SMold", { createdAt: SINCE - LOOKUP_SKEW_MS - 1 }),
    msg("SMnodate", { createdAt: Number.NaN }),
  ];
  assert.deepEqual(
    rankCandidates(list, req()).map((m) => m.providerId),
    ["SMfirst", "SMnewest", "SMsecond", "SMmargin"],
  );
});

test("pick: the first unclaimed match is ours — an identical earlier text belongs to its own record", async () => {
  const list = [msg("SMmine", { createdAt: SINCE + 2000, status: "sent" }), msg("SMearlier", { createdAt: SINCE + 100 })];
  assert.deepEqual(await pickOwnMessage(list, req(["SMearlier"]), { truncated: false }), { found: { providerId: "SMmine", status: "sent" } });
  assert.deepEqual(await pickOwnMessage(list, req(), { truncated: false }), { found: { providerId: "SMearlier", status: "queued" } });
  const failed = await pickOwnMessage([msg("SMf", { status: "failed", errorCode: 30007 })], req(), { truncated: false });
  assert.deepEqual(failed, { found: { providerId: "SMf", status: "failed", errorCode: 30007 } });
});

test("pick: only claimed or non-matching messages → not found", async () => {
  assert.deepEqual(await pickOwnMessage([msg("SMearlier")], req(["SMearlier"]), { truncated: false }), { notFound: true });
  assert.deepEqual(await pickOwnMessage([], req(), { truncated: false }), { notFound: true });
});

test("pick: a full page entirely inside the window cannot prove absence → unknown", async () => {
  const page = Array.from({ length: 3 }, (_, i) => msg(`SM${i}`, { body: `other ${i}`, createdAt: SINCE + i }));
  const r = await pickOwnMessage(page, req(), { truncated: true });
  assert.ok("unknown" in r, JSON.stringify(r));
  // The same full page reaching back past the window does prove it.
  const older = [...page, msg("SMold", { body: "x", createdAt: SINCE - LOOKUP_SKEW_MS - 5000 })];
  assert.deepEqual(await pickOwnMessage(older, req(), { truncated: true }), { notFound: true });
});
