// Secrets at rest (src/secrets.ts): AES-256-GCM round trip, a fresh IV per value, and loud failure
// on tampering, a wrong key, a wrong context or no key at all; token hashing and generation.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";
import { GatewayError } from "../../src/errors.js";
import { createSecretBox, hashToken, newSecret, newToken } from "../../src/secrets.js";

const KEY = randomBytes(32).toString("base64");
const box = createSecretBox(KEY);
const CTX = "webhook:deploybot";

const undecryptable = (e: unknown) => e instanceof GatewayError && e.code === "internal" && /could not be decrypted/.test(e.userText);

test("round trip, including non-ASCII", () => {
  for (const plain of ["s3cret-signing-key-0123456789", "é✓ 日本", ""]) assert.equal(box.open(box.seal(plain, CTX), CTX), plain);
});

test("compact versioned format; the plaintext does not appear in it", () => {
  const sealed = box.seal("hunter2hunter2hunter2", CTX);
  assert.match(sealed, /^v1:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]{22}:[A-Za-z0-9_-]+$/);
  assert.ok(!sealed.includes("hunter2"));
});

test("a random IV per value: the same secret seals differently every time", () => {
  const seen = new Set(Array.from({ length: 50 }, () => box.seal("same", CTX)));
  assert.equal(seen.size, 50);
  assert.equal(new Set([...seen].map((s) => s.split(":")[1])).size, 50);
});

test("any tampering fails loudly: ciphertext, tag, IV, a truncated tag, the format", () => {
  const sealed = box.seal("signing-secret-value", CTX);
  const [v, iv, tag, ct] = sealed.split(":") as [string, string, string, string];
  const flip = (b64: string) => {
    const b = Buffer.from(b64, "base64url");
    b[0] = b[0]! ^ 1;
    return b.toString("base64url");
  };
  const bad = [
    [v, iv, tag, flip(ct)],
    [v, iv, flip(tag), ct],
    [v, flip(iv), tag, ct],
    [v, iv, Buffer.from(tag, "base64url").subarray(0, 8).toString("base64url"), ct],
    ["v2", iv, tag, ct],
    [v, iv, tag],
  ];
  for (const parts of bad) assert.throws(() => box.open(parts.join(":"), CTX), undecryptable, parts.join(":"));
  assert.throws(() => box.open("not a sealed value", CTX), undecryptable);
});

test("a wrong key or a wrong context fails loudly", () => {
  const sealed = box.seal("signing-secret-value", CTX);
  assert.throws(() => createSecretBox(randomBytes(32).toString("base64")).open(sealed, CTX), undecryptable);
  assert.throws(() => box.open(sealed, "webhook:otherbot"), undecryptable);
});

test("no key: storing (and reading) a secret is refused with an error that says how to fix it", () => {
  const none = createSecretBox(undefined);
  assert.equal(none.enabled, false);
  for (const call of [() => none.seal("x", CTX), () => none.open(box.seal("x", CTX), CTX)]) {
    assert.throws(call, (e: unknown) => {
      assert.ok(e instanceof GatewayError);
      assert.equal(e.httpStatus, 503);
      assert.match(e.userText, /^SECRETS_KEY is not set: the gateway refuses to store secrets without it; generate one with openssl rand -base64 32/);
      return true;
    });
  }
});

test("a key of the wrong length is refused", () => {
  assert.throws(() => createSecretBox(randomBytes(16).toString("base64")), /32 random bytes/);
});

test("hashToken is SHA-256 hex; tokens and secrets are random, URL-safe, tokens recognisable", () => {
  assert.equal(hashToken("abc"), createHash("sha256").update("abc").digest("hex"));
  const tokens = new Set(Array.from({ length: 100 }, newToken));
  assert.equal(tokens.size, 100);
  for (const t of tokens) assert.match(t, /^sbt_[A-Za-z0-9_-]{43}$/);
  assert.match(newSecret(), /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(newSecret(), newSecret());
});
