// How XMPP-only message kinds become SMS text (or do not). Pure. Their fallback bodies (XEP-0428) are
// descriptions for old clients ("This person attempted to retract…"), never what the user wrote, so
// the gateway renders them itself.

/**
 * XEP-0308: SMS cannot edit a text already sent, so a correction goes out as a new text with this
 * prefix. Plain GSM-7 on purpose: an emoji marker would switch the whole text to UCS-2 and more than
 * double its segment count.
 */
export const CORRECTION_PREFIX = "Correction: ";

/**
 * XEP-0444: the reaction as a short text, e.g. `Reacted 👍`. The original text is not quoted: the
 * gateway keeps no message bodies. Undefined when the user removed their reactions (nothing to say).
 * A reactions message carries the sender's whole current set, so an added second emoji shows both.
 */
export function reactionText(emojis: readonly string[]): string | undefined {
  const set = [...new Set(emojis.map((e) => e.trim()).filter((e) => e.length > 0 && e.length <= 32))];
  return set.length === 0 ? undefined : `Reacted ${set.join(" ")}`;
}

/** XEP-0424: texts cannot be unsent; what the user is told instead (as a note from the contact). */
export function retractionNotice(contact: string): string {
  return `ℹ️ Texts cannot be unsent: if your earlier message reached ${contact}, it stays there. Nothing was sent for the retraction. (note from the SMS gateway)`;
}
