// Opt-out keywords, segments, XEP-0308/0444/0424 renderings and contact introductions, against pure
// functions and in-memory ports.
import assert from "node:assert/strict";
import { test } from "node:test";
import xml from "@xmpp/xml";
import { CORRECTION_PREFIX, reactionText, retractionNotice } from "../../src/core/model/chat-extensions.js";
import { contactNick, createContactEvents } from "../../src/core/flows/contact-events.js";
import { displayNumber } from "../../src/core/model/display.js";
import type { XmppDelivery } from "../../src/core/model/message.js";
import { consentChange, consentNote, optedOutRefusal } from "../../src/core/policy/opt-out.js";
import type { IntroductionStore, OptOutSource, OptOutStore } from "../../src/core/ports.js";
import { mapProviderError } from "../../src/core/policy/provider-errors.js";
import { countSegments, segmentsProblem } from "../../src/core/model/segments.js";
import { readExtensions } from "../../src/xmpp/extensions.js";
import { deliveryStanza } from "../../src/xmpp/stanzas.js";

test("opt-out keywords: one word, trimmed, any case; OptOutType wins", () => {
  for (const w of ["STOP", "stop", " Stop\n", "STOPALL", "unsubscribe", "CANCEL", "end", "QUIT", "revoke", "OptOut"]) assert.equal(consentChange(w), "opt-out", w);
  for (const w of ["START", "yes", " Unstop "]) assert.equal(consentChange(w), "opt-in", w);
  for (const w of ["please stop", "STOP!", "HELP", "INFO", "", "stop it"]) assert.equal(consentChange(w), undefined, w);
  assert.equal(consentChange("ARRET", "STOP"), "opt-out", "a custom keyword reported by Advanced Opt-Out");
  assert.equal(consentChange("STOP", "START"), "opt-in", "OptOutType wins over the body");
  assert.equal(consentChange("STOP", "HELP"), "opt-out", "HELP says nothing about consent: the body decides");
});

test("opt-out sentences name both numbers and what to do", () => {
  assert.equal(displayNumber("+15552223333"), "+1 555 222 3333");
  assert.equal(displayNumber("72975"), "72975");
  const note = consentNote("opt-out", "+15552223333", "+15550001111");
  assert.match(note, /^ℹ️ \+1 555 222 3333 replied STOP/);
  assert.match(note, /START to \+1 555 000 1111/);
  assert.match(note, /SMS gateway/);
  assert.match(consentNote("opt-in", "+15552223333", "+15550001111"), /opted back in/);
  assert.match(optedOutRefusal("+15552223333", "+15550001111"), /replied STOP.*must text START to \+1 555 000 1111/);
});

test("segments: counted like Twilio; the refusal says how long, how many and why", () => {
  assert.deepEqual(countSegments("a".repeat(160)), { segments: 1, encoding: "GSM-7", characters: 160 });
  assert.equal(countSegments("a".repeat(161)).segments, 2);
  assert.equal(countSegments("é").encoding, "GSM-7", "é is in the GSM-7 alphabet");
  assert.deepEqual(countSegments(`${"a".repeat(69)}ç`), { segments: 1, encoding: "UCS-2", characters: 70, firstNonGsm: "ç" });
  assert.equal(countSegments(`${"a".repeat(70)}ç`).segments, 2, "one ç makes 71 characters two UCS-2 segments");
  assert.equal(countSegments("€".repeat(81)).segments, 2, "extension characters count twice");

  assert.equal(segmentsProblem("a".repeat(1530), 10), undefined, "10 × 153");
  const gsm = segmentsProblem("a".repeat(1531), 10) ?? "";
  assert.match(gsm, /1531 characters long, which is 11 SMS segments in GSM-7; this gateway sends at most 10/);
  const ucs = segmentsProblem(`${"a".repeat(700)}ç`, 10) ?? "";
  assert.match(ucs, /701 characters long, which is 11 SMS segments in UCS-2/);
  assert.match(ucs, /the first is "ç"/);
  assert.match(ucs, /one such character makes the whole text UCS-2/);
});

test("reactions, retractions, corrections as texts", () => {
  assert.equal(reactionText(["👍"]), "Reacted 👍");
  assert.equal(reactionText(["👍", "❤️", "👍"]), "Reacted 👍 ❤️");
  assert.equal(reactionText([]), undefined, "reactions removed: nothing to say");
  assert.equal(reactionText(["  "]), undefined);
  assert.match(retractionNotice("+1 555 222 3333"), /cannot be unsent.*\+1 555 222 3333/);
  assert.equal(countSegments(CORRECTION_PREFIX).encoding, "GSM-7", "the prefix never forces UCS-2");
});

test("provider errors 30003–30008, 30034, 30532, 30533 read as sentences", () => {
  const cases: [number, string, RegExp][] = [
    [30003, "recipient-unavailable", /unreachable.*try again later/],
    [30004, "forbidden", /blocked/],
    [30005, "item-not-found", /no longer in service/],
    [30006, "not-acceptable", /landline/],
    [30007, "policy-violation", /filtered/],
    [30008, "undefined-condition", /no reason/],
    [30034, "not-allowed", /A2P 10DLC/],
    [30532, "not-allowed", /carrier or sender-registration/],
    [30533, "not-allowed", /carrier or sender-registration/],
  ];
  for (const [code, condition, re] of cases) {
    const e = mapProviderError({ code }, { to: "+15552223333" });
    assert.equal(e.condition, condition, String(code));
    assert.match(e.text, new RegExp(`^Twilio ${code}: `));
    assert.match(e.text, re, String(code));
  }
});

function memoryLedger(): OptOutStore & { rows: Map<string, OptOutSource> } {
  const rows = new Map<string, OptOutSource>();
  return {
    rows,
    async isOptedOut(o, t) {
      return rows.has(`${o}|${t}`);
    },
    async optOut(o, t, source) {
      if (rows.has(`${o}|${t}`)) return false;
      rows.set(`${o}|${t}`, source);
      return true;
    },
    async optIn(o, t) {
      return rows.delete(`${o}|${t}`);
    },
  };
}

function memoryIntroductions(): IntroductionStore {
  const seen = new Set<string>();
  return {
    async introduce(jid, local) {
      const k = `${jid}|${local}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    },
    async forget(jid) {
      for (const k of seen) if (k.startsWith(`${jid}|`)) seen.delete(k);
    },
  };
}

test("contact events: one introduction per pair with a nickname; a note only when consent changes", async () => {
  const queued: XmppDelivery[] = [];
  const optOuts = memoryLedger();
  const events = createContactEvents({
    domain: "sms.example.com",
    delivery: { enqueueToXmpp: async (item) => (queued.push(item), true) },
    optOuts,
    introductions: memoryIntroductions(),
    log: { info() {} },
  });
  await events.introduce({ id: "SM1", jid: "alice@example.com/phone", senderLocal: "+15552223333", rawFrom: "+15552223333" });
  await events.introduce({ id: "SM2", jid: "alice@example.com", senderLocal: "+15552223333", rawFrom: "+15552223333" });
  assert.deepEqual(queued, [{ kind: "subscribe", id: "sub-SM1", from: "+15552223333@sms.example.com", to: "alice@example.com", nick: "+1 555 222 3333" }]);
  assert.equal(contactNick("~amazon", "Amazon"), "Amazon");
  assert.equal(contactNick("72975", "72975"), "72975");

  queued.length = 0;
  const base = { ourNumber: "+15550001111", theirNumber: "+15552223333", jid: "alice@example.com", acceptedAt: 1 };
  await events.consent({ ...base, id: "SM3", body: "stop" });
  await events.consent({ ...base, id: "SM4", body: "STOP" }); // already out: no second note
  assert.equal(optOuts.rows.get("+15550001111|+15552223333"), "keyword");
  await events.consent({ ...base, id: "SM5", body: "hello" });
  await events.consent({ ...base, id: "SM6", body: "Start" });
  assert.deepEqual(
    queued.map((q) => (q.kind === "chat" ? [q.id, q.from, q.body.slice(0, 30)] : q.kind)),
    [
      ["SM3-opt-out", "+15552223333@sms.example.com", "ℹ️ +1 555 222 3333 replied STO"],
      ["SM6-opt-in", "+15552223333@sms.example.com", "ℹ️ +1 555 222 3333 opted back "],
    ],
  );
  await events.consent({ ...base, id: "SM7", body: "whatever", optOutType: "STOP" });
  assert.equal(optOuts.rows.get("+15550001111|+15552223333"), "optout-type");
});

test("xmpp: corrections, reactions and retractions are read; a subscribe carries the nick", () => {
  const msg = (...children: ReturnType<typeof xml>[]) => xml("message", { type: "chat" }, xml("body", {}, "fallback"), ...children);
  assert.deepEqual(readExtensions(msg(xml("replace", { xmlns: "urn:xmpp:message-correct:0", id: "m1" }))), { drop: false, replaces: "m1" });
  assert.deepEqual(readExtensions(msg(xml("reactions", { xmlns: "urn:xmpp:reactions:0", id: "m1" }, xml("reaction", {}, "👍"), xml("reaction", {}, "🎉")))), { drop: false, reactions: ["👍", "🎉"] });
  assert.deepEqual(readExtensions(msg(xml("retract", { xmlns: "urn:xmpp:message-retract:1", id: "m1" }))), { drop: false, retracts: "m1" });
  assert.deepEqual(readExtensions(msg(xml("apply-to", { xmlns: "urn:xmpp:fasten:0", id: "m1" }, xml("retract", { xmlns: "urn:xmpp:message-retract:0" })))), { drop: false, retracts: "m1" });
  assert.deepEqual(readExtensions(msg(xml("apply-to", { xmlns: "urn:xmpp:fasten:0", id: "m1" }, xml("other", { xmlns: "urn:example" })))), { drop: true });
  assert.deepEqual(readExtensions(msg()), { drop: false });

  const el = deliveryStanza({ kind: "subscribe", id: "sub-SM1", from: "+15552223333@sms.example.com", to: "alice@example.com", nick: "+1 555 222 3333" }, { domain: "sms.example.com", late: false });
  assert.equal(
    el.toString(),
    `<presence from="+15552223333@sms.example.com" to="alice@example.com" type="subscribe" id="sub-SM1"><nick xmlns="http://jabber.org/protocol/nick">+1 555 222 3333</nick></presence>`,
  );
});
