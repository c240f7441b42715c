// JIDs on the component's domain ⇄ the things they stand for (docs/developers/design.md "Addresses").
// Pure functions: no I/O, no XMPP library.
import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js/max";
import { GatewayError } from "../../errors.js";
import { remembered } from "../util/remembered.js";

export type ContactAddress = { kind: "phone"; e164: string } | { kind: "shortcode"; digits: string } | { kind: "alphanumeric"; name: string } | { kind: "webhook"; name: string };

export const WEBHOOK_NAME = /^[a-z][a-z0-9._-]{0,63}$/;
const SHORT_CODE = /^[0-9]{3,8}$/;

/**
 * Why `name` cannot be a webhook target name, or undefined when it can. A name that looks like a
 * number gets its own message: the operator probably meant a phone contact, not a bot.
 */
export function webhookNameProblem(name: string): string | undefined {
  if (WEBHOOK_NAME.test(name)) return undefined;
  if (/^\+/.test(name) || /^[0-9][0-9 ().-]*$/.test(name)) return `'${truncate(name)}' looks like a phone number; webhook names start with a letter (e.g. deploybot)`;
  return `'${truncate(name)}' is not a webhook name: a lower-case letter, then up to 63 of a-z 0-9 . _ -`;
}

/**
 * Reads a contact localpart. Accepts any *possible* number (not only "valid" ones: metadata lags new
 * ranges, and the fictional +1 555 01xx numbers must work). Throws jid_malformed for a bad number.
 */
export function parseContactLocalpart(localpart: string): ContactAddress {
  const local = localpart.toLowerCase();
  if (local.startsWith("+")) {
    const e164 = toE164(local);
    if (!e164 || e164 !== local) {
      throw new GatewayError("jid_malformed", `'${truncate(localpart)}' is not a phone number in international format; write it like +15552223333@<this service>.`);
    }
    return { kind: "phone", e164 };
  }
  if (SHORT_CODE.test(local)) return { kind: "shortcode", digits: local };
  if (local.startsWith("~") && local.length > 1) return { kind: "alphanumeric", name: local.slice(1) };
  if (WEBHOOK_NAME.test(local)) return { kind: "webhook", name: local };
  throw new GatewayError("jid_malformed", `'${truncate(localpart)}' is not an address this gateway knows; phone numbers look like +15552223333.`);
}

/** E.164 for a string that is already international (`+…`), or undefined when it is not a possible number. */
export const toE164 = remembered((input: string): string | undefined => {
  const n = parsePhoneNumberFromString(input);
  return n?.isPossible() ? fixpoint(n.number) : undefined;
});

/**
 * `e164` when it reads back as itself. libphonenumber drops a national prefix written after the
 * country code (`+550…` → `+55…`): such a result would change again each time it is read, so a
 * number stored from it could never be written to as a contact.
 */
function fixpoint(e164: string): string | undefined {
  return parsePhoneNumberFromString(e164)?.number === e164 ? e164 : undefined;
}

/** Reads a number as a person would type it (national format allowed via `region`). */
export function normalizeNumber(input: string, region: string): string | undefined {
  const cleaned = input.trim();
  if (!cleaned || cleaned.length > 64) return undefined;
  const n = parsePhoneNumberFromString(cleaned, region as CountryCode);
  return n?.isPossible() ? fixpoint(n.number) : undefined;
}

/**
 * The localpart for a message sender seen at the provider (docs/developers/design.md "Addresses"): E.164 as-is,
 * short codes as digits, alphanumeric sender ids as `~name` (a form no webhook name can take).
 */
export function senderLocalpart(from: string): string {
  const trimmed = from.trim();
  // Not a possible number: keep its digits only, so a sender address never puts "/", "@", spaces or
  // control characters into a JID (the XMPP server would close the component stream over it).
  if (trimmed.startsWith("+")) return toE164(trimmed) ?? `+${trimmed.replace(/[^0-9]/g, "")}`;
  if (/^[0-9]+$/.test(trimmed)) return trimmed;
  return `~${trimmed.toLowerCase().replace(/[^a-z0-9._-]/g, "")}`;
}

/** The number (or short code) a contact address sends to, or undefined if it cannot receive texts. */
export function destinationOf(addr: ContactAddress): string | undefined {
  if (addr.kind === "phone") return addr.e164;
  if (addr.kind === "shortcode") return addr.digits;
  return undefined;
}

export interface Jid {
  local: string;
  domain: string;
  resource: string;
}

/** Splits a JID. Local and domain are lower-cased; resources keep their case. */
export function parseJid(s: string): Jid | undefined {
  if (s.length === 0 || s.length > 3071) return undefined;
  const slash = s.indexOf("/");
  const bare = slash === -1 ? s : s.slice(0, slash);
  const resource = slash === -1 ? "" : s.slice(slash + 1);
  const at = bare.indexOf("@");
  const local = at === -1 ? "" : bare.slice(0, at);
  const domain = at === -1 ? bare : bare.slice(at + 1);
  if (!domain || /[@\s]/.test(domain) || /[\s"&'/:<>@]/.test(local) || local.length > 1023 || domain.length > 1023) return undefined;
  if (slash !== -1 && !resource) return undefined;
  return { local: local.toLowerCase(), domain: domain.toLowerCase(), resource };
}

export function bareJid(j: Jid): string {
  return j.local ? `${j.local}@${j.domain}` : j.domain;
}

/** A user's bare JID as given to the admin API: must have a localpart and no resource. */
export function parseUserBareJid(s: string): string | undefined {
  const j = parseJid(s);
  if (!j || !j.local || j.resource) return undefined;
  return bareJid(j);
}

function truncate(s: string, n = 40): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
