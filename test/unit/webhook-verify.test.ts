import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { signPayload, verifySignature } from "../../src/webhooks/verify.js";

const secret = "s3cret-signing-key";
const body = JSON.stringify({ id: "01J0", from: "alice@example.com", to: "deploybot@sms.example.com", body: "héllo", timestamp: "2024-01-01T00:00:00Z" });
const now = 1_700_000_000;
const ts = String(now);

test("signature format: sha256= and lowercase hex HMAC-SHA256 of '<timestamp>.<raw body>'", () => {
  const sig = signPayload(secret, ts, body);
  assert.match(sig, /^sha256=[0-9a-f]{64}$/);
  assert.equal(sig, "sha256=" + createHmac("sha256", secret).update(`${ts}.${body}`).digest("hex"));
  assert.equal(signPayload(secret, now, Buffer.from(body)), sig, "number timestamp and Buffer body sign the same bytes");
});

test("round trip: a signature verifies over the same raw body, string or Buffer", () => {
  const signature = signPayload(secret, ts, body);
  assert.equal(verifySignature({ secret, timestamp: ts, body, signature, now }), true);
  assert.equal(verifySignature({ secret, timestamp: ts, body: Buffer.from(body), signature, now }), true);
  assert.equal(verifySignature({ secret, timestamp: ts, body, signature: signature.toUpperCase().replace("SHA256=", "sha256="), now }), true, "hex case is not significant");
});

test("tampered body, re-serialized body, wrong secret, moved timestamp: refused", () => {
  const signature = signPayload(secret, ts, body);
  assert.equal(verifySignature({ secret, timestamp: ts, body: body.replace("héllo", "hello"), signature, now }), false);
  assert.equal(verifySignature({ secret, timestamp: ts, body: JSON.stringify(JSON.parse(body), null, 1), signature, now }), false);
  assert.equal(verifySignature({ secret: "other", timestamp: ts, body, signature, now }), false);
  assert.equal(verifySignature({ secret, timestamp: String(now + 1), body, signature, now }), false);
  assert.equal(verifySignature({ secret: "", timestamp: ts, body, signature: signPayload("", ts, body), now }), false, "an empty secret never verifies");
});

test("stale or future timestamps are refused (replay), within tolerance accepted", () => {
  const old = String(now - 301);
  assert.equal(verifySignature({ secret, timestamp: old, body, signature: signPayload(secret, old, body), now }), false);
  const future = String(now + 301);
  assert.equal(verifySignature({ secret, timestamp: future, body, signature: signPayload(secret, future, body), now }), false);
  const recent = String(now - 299);
  assert.equal(verifySignature({ secret, timestamp: recent, body, signature: signPayload(secret, recent, body), now }), true);
  assert.equal(verifySignature({ secret, timestamp: old, body, signature: signPayload(secret, old, body), now, toleranceS: 600 }), true);
  const fresh = String(Math.floor(Date.now() / 1000));
  assert.equal(verifySignature({ secret, timestamp: fresh, body, signature: signPayload(secret, fresh, body) }), true, "defaults to the clock");
});

test("malformed headers are refused, not thrown", () => {
  const signature = signPayload(secret, ts, body);
  for (const bad of ["", signature.slice("sha256=".length), "sha1=" + "0".repeat(40), signature.slice(0, -2), signature + "00", "sha256=" + "z".repeat(64)]) {
    assert.equal(verifySignature({ secret, timestamp: ts, body, signature: bad, now }), false, bad);
  }
  for (const badTs of ["", "abc", "1.5e9", "-1700000000", `${ts} `]) {
    assert.equal(verifySignature({ secret, timestamp: badTs, body, signature, now }), false, badTs);
  }
});
