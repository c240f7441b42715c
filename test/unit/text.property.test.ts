// Property tests (fast-check) of text handling and signatures under hostile input: segment counting
// never throws (lone surrogates included), the webhook signature check and the Twilio signature check
// answer false, never throw, on junk, and accept exactly what was signed.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import twilio from "twilio";
import { countSegments, segmentsProblem } from "../../src/core/model/segments.js";
import { isTwilioSignature, signedUrls } from "../../src/adapters/twilio/webhooks.js";
import { signPayload, verifySignature } from "../../src/webhooks/verify.js";
import { anyText, hostileText, longText, mutatedForm } from "../support/hostile.js";
import { inboundSmsParams } from "../fakes/fake-twilio.js";

const RUNS = { numRuns: 300 };

test("countSegments: any text; 0 only for the empty text; encoding and count agree with the limit check", () => {
  fc.assert(
    // Up to a bit over 1600 units: the gateway refuses longer texts before counting (the calculator's
    // cost grows faster than linearly: ~30 ms at 1600 characters, seconds at 20,000).
    fc.property(fc.oneof(anyText(1700), longText(1500, 1700)), fc.integer({ min: 1, max: 50 }), (body, max) => {
      const s = countSegments(body);
      assert.ok(s.encoding === "GSM-7" || s.encoding === "UCS-2");
      assert.equal(s.characters, [...body].length);
      assert.equal(s.segments === 0, body === "");
      assert.ok(Number.isInteger(s.segments) && s.segments >= 0);
      // a segment holds at most 160 units: never fewer segments than that allows
      assert.ok(s.segments >= Math.ceil(body.length / 160), `${s.segments} segments for ${body.length} units`);
      if (s.encoding === "UCS-2") assert.ok(s.firstNonGsm === undefined || typeof s.firstNonGsm === "string");
      const problem = segmentsProblem(body, max);
      assert.equal(problem === undefined, s.segments <= max);
      if (problem) assert.ok(problem.length < 1000, "the refusal is short whatever the text");
    }),
    RUNS,
  );
});

test("countSegments: appending text never lowers the count", () => {
  fc.assert(
    fc.property(hostileText(200), hostileText(200), (a, b) => {
      assert.ok(countSegments(a + b).segments >= countSegments(a).segments);
    }),
    RUNS,
  );
});

const junk: fc.Arbitrary<unknown> = fc.oneof(fc.anything(), hostileText(), fc.constant(undefined), fc.constant(null), fc.array(hostileText(), { maxLength: 3 }));

test("verifySignature: junk of any type is refused, never thrown", () => {
  fc.assert(
    fc.property(
      junk,
      fc.oneof(junk, fc.constant(String(Math.floor(Date.now() / 1000)))),
      junk,
      junk,
      fc.option(fc.oneof(fc.double(), fc.integer()), { nil: undefined }),
      (secret, timestamp, body, signature, toleranceS) => {
        const r = verifySignature({ secret, timestamp, body, signature, ...(toleranceS === undefined ? {} : { toleranceS }) } as never);
        assert.equal(typeof r, "boolean");
      },
    ),
    RUNS,
  );
});

test("verifySignature: accepts what was signed (any secret, any body), refuses any change to it", () => {
  fc.assert(
    fc.property(
      hostileText(30).filter((s) => s.length > 0),
      fc.oneof(
        anyText(3000),
        fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
      ),
      fc.integer({ min: 0, max: 4_000_000_000 }),
      fc.nat(),
      (secret, body, now, flip) => {
        const timestamp = String(now);
        const signature = signPayload(secret, timestamp, body);
        assert.equal(verifySignature({ secret, timestamp, body, signature, now }), true);
        // one hex digit changed
        const i = "sha256=".length + (flip % 64);
        const other = signature.slice(0, i) + (signature[i] === "0" ? "1" : "0") + signature.slice(i + 1);
        assert.equal(verifySignature({ secret, timestamp, body, signature: other, now }), false);
        assert.equal(verifySignature({ secret, timestamp, body, signature, now: now + 301 }), false);
      },
    ),
    RUNS,
  );
});

test("Twilio signature check: never throws on junk; accepts exactly a signature over the posted form", () => {
  const token = "fake-auth-token";
  // The plain check, and the one with connection overrides configured (either form of the URL).
  const plain = (sig: string | undefined, u: string, form: Record<string, string | string[]>) => signedUrls(u, undefined).some((v) => isTwilioSignature(token, sig, v, form));
  const fragmented = (sig: string | undefined, u: string, form: Record<string, string | string[]>) => signedUrls(u, "rc=3&rp=all").some((v) => isTwilioSignature(token, sig, v, form));
  const base = inboundSmsParams({ from: "+15552223333", to: "+15550001111", body: "hi", accountSid: `AC${"1".repeat(32)}` });
  const url = fc.oneof(
    fc.constantFrom("https://gw.example.test/twilio/sms", "https://gw.example.test/twilio/status?id=01J", "https://gw.example.test:443/twilio/sms", "http://gw.example.test/twilio/sms"),
    hostileText(40),
    fc.webUrl(),
  );
  fc.assert(
    fc.property(mutatedForm(base, { longMax: 5000 }), url, fc.option(hostileText(40), { nil: undefined }), (form, u, sig) => {
      for (const check of [plain, fragmented]) {
        assert.equal(typeof check(sig, u, form), "boolean");
        assert.equal(check(undefined, u, form), false);
      }
      let good: string;
      try {
        good = twilio.getExpectedTwilioSignature(token, u, form);
      } catch {
        return; // a URL the SDK cannot even sign
      }
      assert.equal(plain(good, u, form), true);
      assert.equal(plain(good, u, { ...form, Extra: "1" }), false, "an added field breaks it");
      assert.equal(plain(`${good.slice(0, -2)}${good.endsWith("AA") ? "AB" : "AA"}`, u, form), false);
    }),
    { numRuns: 200 },
  );
});
