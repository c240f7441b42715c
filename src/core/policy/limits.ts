// Abuse and cost limits on what users send (issue 6): a per-user rate, a per-user daily quota in SMS
// segments, a destination-country allow list, refused number types and short codes, and a gateway-wide
// breaker on segments per hour. The counters live behind a port (Redis in production) so every instance shares them.
import { parsePhoneNumberFromString, type NumberType } from "libphonenumber-js/max";
import { GatewayError } from "../../errors.js";
import { displayNumber } from "../model/display.js";
import { remembered } from "../util/remembered.js";

export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number; /** this take is the one that tripped the counter */ tripped: boolean };

/** A fixed-window counter shared by every gateway instance. */
export interface UsageCounter {
  /** The limit per window (0 = no limit). */
  readonly limit: number;
  /** Counts `amount` for `key`; refused when the window's total would pass the limit. */
  take(key: string, amount: number): Promise<TakeResult>;
  /** Used in the current window, and when it ends. */
  peek(key: string): Promise<{ used: number; resetInMs: number }>;
  /** Gives back what was taken for a message that did not go out after all. */
  give(key: string, amount: number): Promise<void>;
  /** Forgets the key's window (an operator's reset). */
  reset(key: string): Promise<void>;
}

export type LimitName = "user_rate" | "user_daily_segments" | "destination_country" | "destination_type" | "short_code" | "breaker";

export interface LimitEvents {
  /** A message refused by a limit. */
  refused(limit: LimitName): void;
  /** The breaker tripped: sending stops until `resetInMs` from now (or an operator resets it). */
  breakerTripped(info: { limit: number; resetInMs: number }): void;
}

export interface LimitSettings {
  /** Two-letter ISO codes, or "*" for any country. */
  allowedCountries: readonly string[];
  /** libphonenumber number types refused when the type of a destination is known. */
  blockedNumberTypes: readonly string[];
  /**
   * SHORT_CODES: "deny" (none), "allow" (all) or the short codes allowed. A short code's type cannot be
   * read from a numbering plan, and some bill the sender at premium rates.
   */
  shortCodes?: "deny" | "allow" | readonly string[];
  /** Country of short codes and national numbers. */
  defaultRegion: string;
}

export interface SendLimitsDeps {
  settings: LimitSettings;
  /** Messages per minute per user. */
  userRate: UsageCounter;
  /** SMS segments per day per user. */
  userDaily: UsageCounter;
  /** SMS segments per hour, all users together. */
  breaker: UsageCounter;
  events: LimitEvents;
}

const BREAKER_KEY = "gateway";

const TYPE_WORDS: Partial<Record<NonNullable<NumberType>, string>> = {
  PREMIUM_RATE: "a premium-rate number",
  SHARED_COST: "a shared-cost number",
  UAN: "a universal access number",
  PAGER: "a pager number",
  VOICEMAIL: "a voicemail access number",
  PERSONAL_NUMBER: "a personal (forwarding) number",
  TOLL_FREE: "a toll-free number",
  FIXED_LINE: "a landline",
  VOIP: "a VoIP number",
};

interface NumberFacts {
  country: string | undefined;
  type: NumberType;
}

/** The country and type of an international number ("+…"). */
const factsOf = remembered((destination: string): NumberFacts => {
  const parsed = parsePhoneNumberFromString(destination);
  // A number outside the plan (unassigned area code, e.g. +1 555…) has no country of its own: it is
  // taken as the main country of its calling code, which cannot bill like a premium number can.
  return { country: parsed?.country ?? parsed?.getPossibleCountries()[0], type: parsed?.getType() };
});

function inWords(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  if (s < 90) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.ceil(s / 60);
  if (m < 90) return `${m} minutes`;
  return `${Math.ceil(m / 60)} hours`;
}

const regionName = (() => {
  const names = new Intl.DisplayNames(["en"], { type: "region" });
  return (code: string) => names.of(code) ?? code;
})();

export function createSendLimits(deps: SendLimitsDeps) {
  const { settings, events } = deps;
  const anyCountry = settings.allowedCountries.includes("*");
  const countries = new Set(settings.allowedCountries.map((c) => c.toUpperCase()));
  const blockedTypes = new Set(settings.blockedNumberTypes);
  const countryList = [...countries].map(regionName).join(", ");
  const shortCodes = settings.shortCodes ?? "deny";
  const allowedShortCodes = new Set(typeof shortCodes === "string" ? [] : shortCodes);

  function refuse(limit: LimitName, err: GatewayError): never {
    events.refused(limit);
    throw err;
  }

  /**
   * Refuses short codes not allowed by SHORT_CODES, destinations outside the allowed countries, and
   * number types that are not for texting. Each is the operator's policy, not a passing condition:
   * policy_violation (modify/policy-violation, HTTP 403), like the gateway's other policy refusals.
   */
  function checkDestination(destination: string): void {
    const isShortCode = !destination.startsWith("+");
    if (isShortCode && shortCodes !== "allow" && !allowedShortCodes.has(destination)) {
      const text =
        shortCodes === "deny"
          ? `${destination} is a short code; this gateway does not text short codes (they can be premium-rate). Its operator can allow them with SHORT_CODES.`
          : `${destination} is a short code this gateway does not text: it texts only the short codes its operator listed (short codes can be premium-rate). Its operator can add it to SHORT_CODES.`;
      refuse("short_code", new GatewayError("policy_violation", text));
    }
    const facts = isShortCode ? undefined : factsOf(destination);
    const country = isShortCode ? settings.defaultRegion : facts?.country;
    if (!anyCountry && (!country || !countries.has(country))) {
      const where = country ? `in ${regionName(country)}` : "not tied to a country this gateway can check";
      refuse("destination_country", new GatewayError("policy_violation", `${displayNumber(destination)} is ${where}; this gateway sends texts to numbers in ${countryList} only.`));
    }
    const type = facts?.type;
    if (type && blockedTypes.has(type)) {
      refuse(
        "destination_type",
        new GatewayError(
          "policy_violation",
          `${displayNumber(destination)} is ${TYPE_WORDS[type] ?? `a number of type ${type}`}, which this gateway does not text (they can cost far more than an SMS).`,
        ),
      );
    }
  }

  /** The per-user message rate, for every kind of message a user sends through the gateway. */
  async function admitMessage(user: string): Promise<void> {
    if (deps.userRate.limit <= 0) return;
    const r = await deps.userRate.take(user, 1);
    if (!r.ok) {
      refuse(
        "user_rate",
        new GatewayError(
          "rate_limited",
          `You are sending too fast: this gateway takes at most ${deps.userRate.limit} messages a minute from one user. This one was not sent; send it again in ${inWords(r.retryAfterMs)}.`,
          { retryAfterMs: r.retryAfterMs },
        ),
      );
    }
  }

  /** The daily quota and the gateway-wide breaker, counted in SMS segments. */
  async function admitSms(user: string, segments: number): Promise<void> {
    if (deps.breaker.limit > 0) {
      const state = await deps.breaker.peek(BREAKER_KEY);
      if (state.used > deps.breaker.limit) refuse("breaker", breakerError(state.resetInMs));
    }
    if (deps.userDaily.limit > 0) {
      const r = await deps.userDaily.take(user, segments);
      if (!r.ok) {
        refuse(
          "user_daily_segments",
          new GatewayError(
            "rate_limited",
            `Your daily allowance of ${deps.userDaily.limit} SMS segments on this gateway is used up (this message needs ${segments}). It was not sent; the allowance renews in ${inWords(r.retryAfterMs)}.`,
            { retryAfterMs: r.retryAfterMs },
          ),
        );
      }
    }
    if (deps.breaker.limit > 0) {
      const r = await deps.breaker.take(BREAKER_KEY, segments);
      if (!r.ok) {
        if (r.tripped) events.breakerTripped({ limit: deps.breaker.limit, resetInMs: r.retryAfterMs });
        // The user's quota is not charged for a message that did not go out.
        if (deps.userDaily.limit > 0) await deps.userDaily.give(user, segments);
        refuse("breaker", breakerError(r.retryAfterMs));
      }
    }
  }

  function breakerError(resetInMs: number): GatewayError {
    return new GatewayError(
      "resource_constraint",
      `This gateway has stopped sending texts for now: all its users together reached its limit of ${deps.breaker.limit} SMS segments an hour, a safeguard against runaway costs. The message was not sent; its operator has been told. Sending resumes in ${inWords(resetInMs)} unless the operator resets it sooner.`,
      { retryAfterMs: resetInMs },
    );
  }

  async function breakerStatus(): Promise<{ tripped: boolean; used: number; limit: number; resetInMs: number }> {
    if (deps.breaker.limit <= 0) return { tripped: false, used: 0, limit: 0, resetInMs: 0 };
    const s = await deps.breaker.peek(BREAKER_KEY);
    return { tripped: s.used > deps.breaker.limit, used: s.used, limit: deps.breaker.limit, resetInMs: s.resetInMs };
  }

  return { checkDestination, admitMessage, admitSms, breakerStatus, resetBreaker: () => deps.breaker.reset(BREAKER_KEY) };
}

export type SendLimits = ReturnType<typeof createSendLimits>;
