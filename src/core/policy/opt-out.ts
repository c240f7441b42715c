// Opt-out keywords (docs/facts/twilio.md "Opt-out keywords"): what an inbound SMS says about consent, and the sentences the user
// reads about it. Pure. Twilio blocks texts to a number that replied STOP (and answers 21610), so the
// gateway keeps its own ledger to refuse such sends up front and explain them.
import { displayNumber } from "../model/display.js";

export type ConsentChange = "opt-out" | "opt-in";

// Twilio's default keywords for long codes and toll-free numbers; HELP/INFO change nothing.
const OPT_OUT = new Set(["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]);
const OPT_IN = new Set(["START", "YES", "UNSTOP"]);

/**
 * What an inbound SMS changes. Twilio's `OptOutType` (sent when a Messaging Service's Advanced
 * Opt-Out matched one of its own, possibly custom, keywords) wins; otherwise a body that is exactly one
 * keyword, trimmed and in any case.
 */
export function consentChange(body: string, optOutType?: string): ConsentChange | undefined {
  const type = optOutType?.trim().toUpperCase();
  if (type === "STOP") return "opt-out";
  if (type === "START") return "opt-in";
  const word = body.trim().toUpperCase();
  if (OPT_OUT.has(word)) return "opt-out";
  if (OPT_IN.has(word)) return "opt-in";
  return undefined;
}

/** The note the user gets from the contact's JID; the ℹ️ marks it as the gateway's, not the contact's. */
export function consentNote(change: ConsentChange, theirNumber: string, ourNumber: string): string {
  const them = displayNumber(theirNumber);
  const us = displayNumber(ourNumber);
  return change === "opt-out"
    ? `ℹ️ ${them} replied STOP: texts from your number ${us} to them are now blocked by the carrier. They can text START to ${us} to allow them again. (note from the SMS gateway)`
    : `ℹ️ ${them} opted back in (START): you can text them again from ${us}. (note from the SMS gateway)`;
}

/** Why a send to an opted-out number is refused before it reaches the provider. */
export function optedOutRefusal(theirNumber: string, ourNumber: string): string {
  const us = displayNumber(ourNumber);
  return `${displayNumber(theirNumber)} replied STOP and has opted out of texts from your number ${us}, so nothing was sent. The recipient must text START to ${us} before you can text them again.`;
}
