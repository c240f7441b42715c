import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { canAdvance, isFinal, newMessageId } from "../../src/core/model/message.js";
import { backoff, splitMedia } from "../../src/core/flows/xmpp-out.js";
import { reconnectDelay } from "../../src/xmpp/connection.js";

test("statuses only move forward and final states never change", () => {
  assert.ok(canAdvance("pending", "queued"));
  assert.ok(canAdvance("queued", "sent"));
  assert.ok(canAdvance("sent", "delivered"));
  assert.ok(!canAdvance("sent", "queued"), "late 'queued' after 'sent'");
  assert.ok(!canAdvance("sending", "accepted"));
  assert.ok(!canAdvance("delivered", "failed"), "final");
  assert.ok(!canAdvance("failed", "delivered"), "final");
  assert.ok(!canAdvance("delivered", "delivered"), "repeat");
  assert.ok(canAdvance("unknown", "delivered"), "a real callback beats an ambiguous outcome");
  assert.ok(!canAdvance("unknown", "queued"));
  assert.ok(isFinal("undelivered") && isFinal("read") && !isFinal("sent"));
});

test("message ids are unique and sortable", () => {
  const ids = Array.from({ length: 1000 }, () => newMessageId());
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
});

test("an uploaded file's URL (body == OOB URL) is media, other text the caption", () => {
  const u = "https://upload.example.com/abc/photo.jpg";
  assert.deepEqual(splitMedia(u, [u]), { text: "", mediaUrls: [u] });
  assert.deepEqual(splitMedia(`look\n${u}`, [u]), { text: "look", mediaUrls: [u] });
  assert.deepEqual(splitMedia(`see ${u} now`, []), { text: `see ${u} now`, mediaUrls: [] });
  assert.deepEqual(splitMedia("x", ["ftp://nope"]), { text: "x", mediaUrls: [] });
});

test("reconnect gaps grow from ~1 s, doubling with jitter, to a cap of at least 60 s", () => {
  for (const r of [0, 0.5, 0.999]) {
    const gaps = Array.from({ length: 12 }, (_, n) => reconnectDelay(n, 1000, 60_000, () => r));
    assert.ok(gaps[0]! >= 500 && gaps[0]! <= 1000, `first gap ~1 s: ${gaps[0]}`);
    for (let i = 1; i < 6; i++) assert.ok(gaps[i]! > gaps[i - 1]!, `gap ${i} grows: ${gaps.join(",")}`);
    assert.ok(gaps.every((g) => g <= 60_000));
    assert.ok(gaps[11]! >= 30_000, "reaches the cap's range");
  }
  // Jitter: different random draws give different gaps at the same attempt.
  assert.notEqual(
    reconnectDelay(3, 1000, 60_000, () => 0),
    reconnectDelay(3, 1000, 60_000, () => 0.9),
  );
});

test("retry backoff grows", () => {
  const r = Math.random;
  Math.random = () => 0.5;
  try {
    assert.ok(backoff(1000, 1) < backoff(1000, 2) && backoff(1000, 2) < backoff(1000, 3));
  } finally {
    Math.random = r;
  }
});

test("core/ imports no driver (Fastify, XMPP, Redis, Twilio)", () => {
  const dir = new URL("../../src/core/", import.meta.url);
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith(".ts"));
  assert.ok(files.length > 20, "every core module, in its folders too");
  for (const f of files) {
    const path = join(f.parentPath ?? f.path, f.name);
    const src = readFileSync(path, "utf8");
    assert.doesNotMatch(src, /from ["'](fastify|@xmpp\/|redis|twilio|undici)/, path);
  }
});
