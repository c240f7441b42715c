import assert from "node:assert/strict";
import { test } from "node:test";
import { parseRetryAfter } from "../../src/adapters/twilio/retry-after.js";
import type { ProviderFailure } from "../../src/core/ports.js";
import { backoff, MAX_BACKOFF_MS, RETRY_AFTER_CAP_MS, retryDelay } from "../../src/core/policy/retry-policy.js";

const NOW = Date.parse("2026-01-01T12:00:00Z");

test("Retry-After: delay-seconds", () => {
  assert.equal(parseRetryAfter("1", NOW), 1000);
  assert.equal(parseRetryAfter(" 120 ", NOW), 120_000);
  assert.equal(parseRetryAfter("0", NOW), 0);
  assert.equal(parseRetryAfter("1.5", NOW), 1500, "a fraction is tolerated");
  assert.equal(parseRetryAfter(["3", "9"], NOW), 3000, "a repeated header: the first wins");
});

test("Retry-After: HTTP-date, in the future or the past", () => {
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 12:00:30 GMT", NOW), 30_000);
  assert.equal(parseRetryAfter("Thursday, 01-Jan-26 12:00:05 GMT", NOW), 5000, "obsolete RFC 850 form");
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 11:59:00 GMT", NOW), 0, "a past date means now");
});

test("Retry-After: absent or unreadable → undefined", () => {
  for (const v of [undefined, "", "   ", "soon", "-5", "1e3", "Thu, 99 Foo 2026"]) assert.equal(parseRetryAfter(v, NOW), undefined, String(v));
});

const busy = (retryAfterMs?: number): ProviderFailure => ({ kind: "retry", httpStatus: 429, code: 20429, message: "Too Many Requests", ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });

test("retryDelay: our backoff without Retry-After", () => {
  assert.equal(
    retryDelay(busy(), 1, 1000, () => 0),
    500,
  );
  assert.equal(
    retryDelay(busy(), 3, 1000, () => 0.999),
    backoff(1000, 3, MAX_BACKOFF_MS, () => 0.999),
  );
  assert.ok(retryDelay(busy(), 30, 1000, () => 0.999) <= MAX_BACKOFF_MS, "capped");
});

test("retryDelay: Retry-After is a minimum, with a little jitter on top, and capped", () => {
  for (const r of [0, 0.5, 0.999]) {
    const d = retryDelay(busy(1000), 1, 50, () => r);
    assert.ok(d >= 1000 && d <= 1200, `honours 1 s: ${d}`);
  }
  // Our own backoff still grows under a short Retry-After.
  assert.equal(
    retryDelay(busy(1000), 5, 1000, () => 0.5),
    12_000,
  );
  assert.ok(retryDelay(busy(86_400_000), 1, 50, () => 0.999) <= RETRY_AFTER_CAP_MS + 1000, "an absurd Retry-After is capped");
});
