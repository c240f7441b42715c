// countSegments' arithmetic fast path for texts made only of the GSM-7 basic character set agrees with
// Twilio's calculator (sms-segments-calculator), character set and segment boundaries included; texts
// with extension characters, emoji or other non-GSM characters still get the library's answer.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { SegmentedMessage } from "sms-segments-calculator";
import { countSegments } from "../../src/core/model/segments.js";

// GSM 03.38 basic table, as the fast path takes it.
const GSM_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const BOUNDARIES = [0, 1, 152, 153, 154, 159, 160, 161, 305, 306, 307, 308, 459, 460, 461, 999, 1000];

/** What the library says for a body (the gateway counts the empty text as 0 segments). */
function library(body: string) {
  const m = new SegmentedMessage(body, "auto", false);
  return { segments: body === "" ? 0 : m.segmentsCount, encoding: m.encodingName, characters: [...body].length };
}

const gsmUnit = fc.constantFrom(...GSM_BASIC);
const gsmText = fc.oneof(
  fc.string({ unit: gsmUnit, maxLength: 1000 }),
  fc.constantFrom(...BOUNDARIES).chain((n) => fc.string({ unit: gsmUnit, minLength: n, maxLength: n })),
);

test("fast path: GSM-7 basic texts of 0..1000 characters count as the library counts them", () => {
  fc.assert(
    fc.property(gsmText, (body) => {
      assert.deepEqual(countSegments(body), library(body));
    }),
    { numRuns: 100 },
  );
});

test("fast path: the segment boundaries (160/161, 306/307, 459/460) and CR LF", () => {
  for (const n of BOUNDARIES) {
    const body = "a".repeat(n);
    assert.deepEqual(countSegments(body), library(body), `${n} characters`);
  }
  assert.deepEqual(countSegments("a".repeat(160)), { segments: 1, encoding: "GSM-7", characters: 160 });
  assert.deepEqual(countSegments("a".repeat(161)), { segments: 2, encoding: "GSM-7", characters: 161 });
  assert.deepEqual(countSegments("a".repeat(306)), { segments: 2, encoding: "GSM-7", characters: 306 });
  assert.deepEqual(countSegments("a".repeat(307)), { segments: 3, encoding: "GSM-7", characters: 307 });
  assert.deepEqual(countSegments(""), { segments: 0, encoding: "GSM-7", characters: 0 });
  // "\r\n" is one grapheme, which the library splits back into two GSM characters.
  for (const body of ["\r\n".repeat(80), "\r\n".repeat(81), `x${"\r\n".repeat(80)}`, "\n\r".repeat(81)]) {
    assert.deepEqual(countSegments(body), library(body), JSON.stringify(body.slice(0, 6)));
  }
});

test("fast path: its character set is exactly the library's single-septet GSM-7 set", () => {
  // Any code unit the library does not call GSM-7 must not be counted as GSM-7.
  const gsm: string[] = [];
  for (let c = 0; c <= 0xffff; c++) {
    const ch = String.fromCharCode(c);
    const lib = library(ch);
    assert.deepEqual((({ segments, encoding, characters }) => ({ segments, encoding, characters }))(countSegments(ch)), lib, `U+${c.toString(16).padStart(4, "0")}`);
    if (lib.encoding === "GSM-7") gsm.push(ch);
  }
  // Among GSM-7 characters, 160 of an extension character take two septets each (3 segments), 160 of
  // a basic one fit in one segment: the fast path must tell them apart as the library does.
  for (const ch of gsm) {
    const body = ch.repeat(160);
    assert.deepEqual(countSegments(body), library(body), `U+${ch.charCodeAt(0).toString(16).padStart(4, "0")} × 160`);
  }
  assert.equal(gsm.length - GSM_BASIC.length, 10, "the library knows ten extension characters");
  assert.equal(new Set(GSM_BASIC).size, 127);
});

test("library path: extension characters, emoji and other non-GSM characters", () => {
  const examples = [
    "Price: 5€",
    "{json: [1, 2]}",
    "a^b|c~d\\e",
    "page\fbreak",
    "€".repeat(80),
    "€".repeat(81),
    `${"a".repeat(159)}[`,
    "hello 👋",
    "👍🏽".repeat(40),
    "“curly quotes”",
    `${"a".repeat(69)}ç`,
    `${"a".repeat(70)}ç`,
    "Привет",
    "e\u0301", // é as e + combining accent
    "🇫🇷🇩🇪",
  ];
  for (const body of examples) {
    const got = countSegments(body);
    const m = new SegmentedMessage(body, "auto", false);
    assert.deepEqual({ segments: got.segments, encoding: got.encoding, characters: got.characters }, library(body), JSON.stringify(body));
    if (m.encodingName === "UCS-2") assert.equal(got.firstNonGsm, m.getNonGsmCharacters()[0], JSON.stringify(body));
    else assert.equal(got.firstNonGsm, undefined);
  }
  assert.deepEqual(countSegments("€".repeat(81)), { segments: 2, encoding: "GSM-7", characters: 81 });
  assert.deepEqual(countSegments("hello 👋"), { segments: 1, encoding: "UCS-2", characters: 7, firstNonGsm: "👋" });
});
