// SMS segments and encoding, counted by Twilio's own calculator (sms-segments-calculator), so the
// gateway's refusal agrees with what Twilio would bill. Pure.
import { SegmentedMessage } from "sms-segments-calculator";

export interface SegmentInfo {
  segments: number;
  encoding: "GSM-7" | "UCS-2";
  /** Characters as a person counts them (code points). */
  characters: number;
  /** The first character that forced UCS-2, when the text is UCS-2. */
  firstNonGsm?: string;
}

// The GSM 03.38 basic character set (the 127 characters with a single-septet code; the escape to the
// extension table has no character of its own). Equal to the single-unit entries of the calculator's
// UnicodeToGSM map; extension characters (form feed, ^{}\[~]|€) and everything else take the library path.
const GSM_BASIC_CHARS = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_BASIC = new RegExp(`^[${[...GSM_BASIC_CHARS].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")}]*$`);

/**
 * Counts a body the way Twilio sends it. Smart encoding is off (the gateway does not ask Twilio for
 * it), so a single curly quote or emoji makes the whole text UCS-2.
 */
export function countSegments(body: string): SegmentInfo {
  // Fast path: the library costs tens of µs per text (it splits graphemes and builds a segment
  // model), and most texts are plain GSM-7. When every character is in the GSM 03.38 *basic* table
  // (one septet, one UTF-16 unit, its own grapheme — the library splits "\r\n" too), the count is
  // plain arithmetic: 160 septets in one segment, 153 per segment once the text is split.
  if (GSM_BASIC.test(body)) {
    const n = body.length;
    return { segments: n === 0 ? 0 : n <= 160 ? 1 : Math.ceil(n / 153), encoding: "GSM-7", characters: n };
  }
  const m = new SegmentedMessage(body, "auto", false);
  const encoding = m.encodingName;
  // The calculator never splits a grapheme, so a cluster longer than a segment (zalgo text, a run of
  // joiners) counts as one segment; carriers split anywhere. Never fewer than the bits need.
  const atLeast = m.messageSize <= 1120 ? 1 : Math.ceil(m.messageSize / (encoding === "GSM-7" ? 153 * 7 : 67 * 16));
  const info: SegmentInfo = { segments: body === "" ? 0 : Math.max(m.segmentsCount, atLeast), encoding, characters: [...body].length };
  const first = encoding === "UCS-2" ? m.getNonGsmCharacters()[0] : undefined;
  // (a grapheme can be long: only its start is shown)
  if (first !== undefined) info.firstNonGsm = first.length > 8 ? [...first].slice(0, 4).join("") : first;
  return info;
}

// Per segment of a multi-part message (the rest of 140 bytes carries the concatenation header).
const PER_SEGMENT = { "GSM-7": 153, "UCS-2": 67 } as const;

/** Why a body (or its count, when already made) is refused for having more segments than `max`, or undefined when it fits. */
export function segmentsProblem(body: string | SegmentInfo, max: number): string | undefined {
  const s = typeof body === "string" ? countSegments(body) : body;
  if (s.segments <= max) return undefined;
  const head = `The message is ${s.characters} characters long, which is ${s.segments} SMS segments in ${s.encoding}; this gateway sends at most ${max} segments per message.`;
  if (s.encoding === "GSM-7") return `${head} Shorten it or split it into several messages.`;
  const culprit = s.firstNonGsm !== undefined ? ` (the first is ${JSON.stringify(s.firstNonGsm)})` : "";
  return `${head} It contains characters outside the GSM-7 SMS alphabet${culprit}, and one such character makes the whole text UCS-2, where a segment holds ${PER_SEGMENT["UCS-2"]} characters instead of ${PER_SEGMENT["GSM-7"]}. Replace those characters (emoji, curly quotes…) or shorten the message.`;
}
