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

/**
 * Counts a body the way Twilio sends it. Smart encoding is off (the gateway does not ask Twilio for
 * it), so a single curly quote or emoji makes the whole text UCS-2.
 */
export function countSegments(body: string): SegmentInfo {
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
