// Property tests (fast-check) of address parsing: no input, however hostile (lone surrogates,
// controls, bidi overrides, huge strings), makes it throw anything but a GatewayError, and
// normalisation is idempotent and round-trips.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { getCountries } from "libphonenumber-js";
import { normalizeNumber, parseContactLocalpart, parseJid, parseUserBareJid, senderLocalpart, toE164, webhookNameProblem, WEBHOOK_NAME, type ContactAddress } from "../../src/core/model/addresses.js";
import { GatewayError } from "../../src/errors.js";
import { contactLocal, hostileText, jidLike, longText, phoneLike } from "../support/hostile.js";

const RUNS = { numRuns: 300 };
const anyString = fc.oneof(hostileText(60), phoneLike, jidLike, contactLocal, longText(100, 5000));
const region = fc.constantFrom(...getCountries());

function tryParse(local: string): ContactAddress | GatewayError {
  try {
    return parseContactLocalpart(local);
  } catch (err) {
    assert.ok(err instanceof GatewayError, `threw ${String(err)} for ${JSON.stringify(local)}`);
    assert.equal(err.condition, "jid-malformed");
    assert.ok(err.userText.length < 300, "the error text stays short (input is truncated)");
    return err;
  }
}

test("parseContactLocalpart: any string is an address or jid-malformed, never another throw", () => {
  fc.assert(
    fc.property(fc.oneof(anyString, contactLocal), (local) => {
      const r = tryParse(local);
      if (r instanceof GatewayError) return;
      switch (r.kind) {
        case "phone":
          assert.match(r.e164, /^\+[1-9][0-9]{1,16}$/);
          // idempotent: its own E.164 reads back as the same address
          assert.deepEqual(parseContactLocalpart(r.e164), r);
          break;
        case "shortcode":
          assert.match(r.digits, /^[0-9]{3,8}$/);
          break;
        case "alphanumeric":
          assert.ok(r.name.length > 0);
          break;
        case "webhook":
          assert.match(r.name, WEBHOOK_NAME);
          break;
      }
    }),
    RUNS,
  );
});

test("toE164: never throws; E.164 or undefined; idempotent", () => {
  fc.assert(
    fc.property(anyString, (s) => {
      const e = toE164(s);
      if (e === undefined) return;
      assert.match(e, /^\+[1-9][0-9]+$/);
      assert.equal(toE164(e), e);
    }),
    RUNS,
  );
});

test("normalizeNumber: never throws for any supported region; idempotent; agrees with toE164 on its output", () => {
  fc.assert(
    fc.property(anyString, region, (s, r) => {
      const n = normalizeNumber(s, r);
      if (n === undefined) return;
      assert.match(n, /^\+[1-9][0-9]+$/);
      assert.equal(normalizeNumber(n, r), n);
      assert.equal(toE164(n), n);
    }),
    RUNS,
  );
});

test("parseJid: never throws; what it accepts is lower-cased and round-trips", () => {
  fc.assert(
    fc.property(fc.oneof(jidLike, anyString), (s) => {
      const j = parseJid(s);
      if (!j) return;
      assert.ok(j.domain.length > 0);
      assert.doesNotMatch(j.domain, /[@\s/]/);
      assert.doesNotMatch(j.local, /[\s"&'/:<>@]/);
      assert.equal(j.local, j.local.toLowerCase());
      assert.equal(j.domain, j.domain.toLowerCase());
      const again = `${j.local ? `${j.local}@` : ""}${j.domain}${j.resource ? `/${j.resource}` : ""}`;
      // A localpart or domain that grows when lower-cased (İ → i̇) may pass a length limit only before.
      if (again.length <= 3071 && j.local.length <= 1023 && j.domain.length <= 1023) assert.deepEqual(parseJid(again), j);
    }),
    RUNS,
  );
});

test("parseUserBareJid: never throws; idempotent; never keeps a resource", () => {
  fc.assert(
    fc.property(fc.oneof(jidLike, anyString), (s) => {
      const b = parseUserBareJid(s);
      if (b === undefined) return;
      assert.ok(!b.includes("/"), b);
      assert.equal(b.split("@").length, 2);
      assert.equal(parseUserBareJid(b), b);
    }),
    RUNS,
  );
});

test("senderLocalpart: whatever a provider calls the sender, the localpart is safe in a JID", () => {
  fc.assert(
    fc.property(fc.oneof(phoneLike, anyString), (from) => {
      const local = senderLocalpart(from);
      // Nothing that would split a JID or that XML forbids (the server would close the stream).
      // eslint-disable-next-line no-control-regex -- control characters are what must be absent
      assert.doesNotMatch(local, /[@/\s\u0000-\u001f\ufffe\uffff]/u, JSON.stringify(local));
      assert.doesNotMatch(local, /[\ud800-\udfff]/, "no surrogate halves");
      tryParse(local);
      // a phone number sender stays itself
      const e164 = toE164(from.trim());
      if (from.trim().startsWith("+") && e164) assert.equal(local, e164);
    }),
    RUNS,
  );
});

test("webhookNameProblem: never throws; undefined exactly for valid names", () => {
  fc.assert(
    fc.property(fc.oneof(contactLocal, anyString, fc.stringMatching(WEBHOOK_NAME)), (s) => {
      const p = webhookNameProblem(s);
      assert.equal(p === undefined, WEBHOOK_NAME.test(s));
      if (p !== undefined) assert.ok(p.length < 300);
    }),
    RUNS,
  );
});
