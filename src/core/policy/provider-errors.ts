// Provider (Twilio) failures → retry policy and the XMPP stanza error the sender sees.
// Pure: adapters describe what happened (HTTP answer or transport failure); this module decides.
// Conditions follow RFC 6120 §8.3.3; codes and meanings follow docs/facts/twilio.md "Errors" and twilio.com/docs/api/errors.
import type { StanzaErrorType } from "../../errors.js";
import type { ProviderFailure } from "../ports.js";

export type { StanzaErrorType };

export type StanzaErrorCondition =
  | "bad-request"
  | "conflict"
  | "feature-not-implemented"
  | "forbidden"
  | "gone"
  | "internal-server-error"
  | "item-not-found"
  | "jid-malformed"
  | "not-acceptable"
  | "not-allowed"
  | "not-authorized"
  | "policy-violation"
  | "recipient-unavailable"
  | "redirect"
  | "registration-required"
  | "remote-server-not-found"
  | "remote-server-timeout"
  | "resource-constraint"
  | "service-unavailable"
  | "subscription-required"
  | "undefined-condition"
  | "unexpected-request";

export interface StanzaErrorSpec {
  condition: StanzaErrorCondition;
  type: StanzaErrorType;
  text: string;
}

/** Optional details that make texts concrete (the destination number). */
export interface ProviderErrorContext {
  to?: string;
}

interface CodeEntry {
  condition: StanzaErrorCondition;
  type: StanzaErrorType;
  meaning: (ctx: ProviderErrorContext) => string;
}

const quoted = (ctx: ProviderErrorContext, fallback: string): string => (ctx.to ? `'${ctx.to}'` : fallback);

const CODES: ReadonlyMap<number, CodeEntry> = new Map<number, CodeEntry>([
  // Our own credentials or account are wrong: nothing the sender can fix.
  [20003, { condition: "internal-server-error", type: "cancel", meaning: () => "authentication with Twilio failed (gateway misconfigured)" }],
  [20404, { condition: "internal-server-error", type: "cancel", meaning: () => "the Twilio resource was not found (gateway misconfigured)" }],
  [20429, { condition: "resource-constraint", type: "wait", meaning: () => "too many requests to Twilio; try again later" }],
  [21211, { condition: "jid-malformed", type: "modify", meaning: (c) => `${quoted(c, "the destination")} is not a valid phone number` }],
  [21212, { condition: "not-allowed", type: "cancel", meaning: () => "your number is not a valid sender for this account" }],
  [21408, { condition: "not-allowed", type: "cancel", meaning: (c) => `sending SMS to the region of ${quoted(c, "this number")} is not enabled` }],
  [21602, { condition: "not-acceptable", type: "modify", meaning: () => "the message has no text and no media" }],
  [21603, { condition: "internal-server-error", type: "cancel", meaning: () => "no sender number was given (gateway error)" }],
  [21604, { condition: "jid-malformed", type: "modify", meaning: () => "no destination number was given" }],
  [21606, { condition: "not-allowed", type: "cancel", meaning: () => "your number cannot send SMS through this account" }],
  [
    21610,
    {
      condition: "forbidden",
      type: "auth",
      meaning: (c) => `${c.to ?? "the recipient"} has unsubscribed (replied STOP); the recipient must text START to your number before you can send again`,
    },
  ],
  [21612, { condition: "not-allowed", type: "cancel", meaning: (c) => `${quoted(c, "this number")} cannot be reached by SMS from your number` }],
  [21614, { condition: "not-acceptable", type: "modify", meaning: (c) => `${quoted(c, "the destination")} is not a mobile number` }],
  [21617, { condition: "not-acceptable", type: "modify", meaning: () => "the message is longer than 1600 characters" }],
  [21623, { condition: "not-acceptable", type: "modify", meaning: () => "the message has more than 10 media attachments" }],
  [21611, { condition: "resource-constraint", type: "wait", meaning: () => "your number's send queue is full (over 10 hours of messages); try again later" }],
  [30001, { condition: "resource-constraint", type: "wait", meaning: () => "the send queue overflowed; try again later" }],
  [30002, { condition: "internal-server-error", type: "cancel", meaning: () => "the Twilio account is suspended" }],
  // Delivery failures (status callbacks). Texts say what happened and what, if anything, helps.
  [
    30003,
    {
      condition: "recipient-unavailable",
      type: "wait",
      meaning: (c) => `the handset${c.to ? ` '${c.to}'` : ""} is unreachable (switched off, out of coverage or unable to take texts right now); try again later`,
    },
  ],
  [30004, { condition: "forbidden", type: "auth", meaning: () => "the message was blocked: the recipient may have blocked your number, or their carrier blocks texts from it" }],
  [30005, { condition: "item-not-found", type: "cancel", meaning: (c) => `${quoted(c, "the destination number")} is unknown to its carrier or no longer in service; check the number` }],
  [30006, { condition: "not-acceptable", type: "cancel", meaning: (c) => `${quoted(c, "the destination")} is a landline, or its carrier cannot receive texts: it cannot be reached by SMS` }],
  [
    30007,
    {
      condition: "policy-violation",
      type: "modify",
      meaning: () => "the carrier filtered the message as spam or unwanted content; rewording it (for example without links) may help",
    },
  ],
  [30008, { condition: "undefined-condition", type: "cancel", meaning: () => "delivery failed and the carrier gave no reason; try again later" }],
  [
    30034,
    {
      condition: "not-allowed",
      type: "cancel",
      meaning: () =>
        "US carriers blocked the message because your number is not registered for A2P 10DLC business texting; the gateway operator must register the number (brand and campaign) with Twilio",
    },
  ],
  // Carrier/registration refusals whose details we could not check against Twilio's documentation:
  // described by kind only, so the operator looks the code up rather than trusting a guess.
  [
    30532,
    {
      condition: "not-allowed",
      type: "cancel",
      meaning: () => "the message was refused for a carrier or sender-registration (compliance) reason; the gateway operator can look this code up in the Twilio console",
    },
  ],
  [
    30533,
    {
      condition: "not-allowed",
      type: "cancel",
      meaning: () => "the message was refused for a carrier or sender-registration (compliance) reason; the gateway operator can look this code up in the Twilio console",
    },
  ],
  [30036, { condition: "remote-server-timeout", type: "wait", meaning: () => "the message expired before it could be delivered (validity period)" }],
]);

/** Human meaning of a provider code, or undefined for codes we have no entry for. */
export function describeProviderCode(code: number, ctx: ProviderErrorContext = {}): string | undefined {
  return CODES.get(code)?.meaning(ctx);
}

/** The input to classification: what the adapter observed. */
export type ProviderObservation =
  | { type: "http"; status: number; code?: number; message?: string }
  | {
      type: "transport";
      /** `not-sent`: no connection carried the request; `maybe-sent`: it may have reached the provider. */
      phase: "not-sent" | "maybe-sent";
      message?: string;
    };

const isTooManyRequests = (status: number | undefined, code: number | undefined): boolean => status === 429 || code === 20429;

/**
 * Decides whether resending is safe. Only "certainly not processed" answers are `retry`: 429/20429
 * (Twilio rejects before processing) and 503 (service unavailable); other 5xx may have created the
 * message, as may any failure after the request was written.
 */
export function classifyProviderFailure(o: ProviderObservation): ProviderFailure {
  if (o.type === "transport") {
    return o.phase === "not-sent"
      ? { kind: "retry", message: o.message ?? "Twilio could not be reached" }
      : { kind: "ambiguous", message: o.message ?? "Twilio did not answer; the message may have been sent" };
  }
  const { status, code } = o;
  const failure: ProviderFailure = { kind: "permanent", httpStatus: status, message: o.message || `HTTP ${status} from Twilio` };
  if (code !== undefined) failure.code = code;
  if (isTooManyRequests(status, code) || status === 503) failure.kind = "retry";
  else if (status >= 500) failure.kind = "ambiguous";
  // 4xx (and an unfollowed 3xx): Twilio refused; resending the same request gets the same answer.
  return failure;
}

function textFor(code: number | undefined, status: number | undefined, meaning: string): string {
  if (code !== undefined) return `Twilio ${code}: ${meaning}`;
  if (status !== undefined) return `Twilio HTTP ${status}: ${meaning}`;
  return `Twilio: ${meaning}`;
}

/** Stanza error for a Twilio error code and/or HTTP status (sync REST answers and async status callbacks). */
export function mapProviderError(input: { code?: number; httpStatus?: number; message?: string }, ctx: ProviderErrorContext = {}): StanzaErrorSpec {
  const { code, httpStatus: status } = input;
  const providerMessage = input.message?.trim();
  const entry = code !== undefined ? CODES.get(code) : undefined;
  if (entry) return { condition: entry.condition, type: entry.type, text: textFor(code, status, entry.meaning(ctx)) };

  const say = (fallback: string): string => textFor(code, status, providerMessage || fallback);
  if (isTooManyRequests(status, code)) return { condition: "resource-constraint", type: "wait", text: say("too many requests to Twilio; try again later") };
  if (status === 503) return { condition: "remote-server-timeout", type: "wait", text: say("Twilio is temporarily unavailable; try again later") };
  if (status !== undefined && status >= 500) {
    // Twilio may or may not have accepted it: `cancel` tells the client not to resend blindly.
    return { condition: "undefined-condition", type: "cancel", text: say("Twilio failed while handling the message; it may or may not have been sent") };
  }
  if (status === 401 || status === 403 || status === 404) {
    return { condition: "internal-server-error", type: "cancel", text: say("the gateway's Twilio account is misconfigured") };
  }
  if (status === 413) return { condition: "not-acceptable", type: "modify", text: say("the message is too large") };
  if (status === 400 || status === 422) return { condition: "bad-request", type: "modify", text: say("Twilio rejected the message") };
  if (code !== undefined && code >= 30000 && code < 40000) {
    // Unlisted 3xxxx codes are delivery failures reported after acceptance.
    return { condition: "undefined-condition", type: "cancel", text: say("the message could not be delivered") };
  }
  return { condition: "undefined-condition", type: "cancel", text: say("Twilio rejected the message") };
}

/** Stanza error for a classified failure, once the gateway has given up on it. */
export function mapProviderFailure(failure: ProviderFailure, ctx: ProviderErrorContext = {}): StanzaErrorSpec {
  if (failure.code !== undefined || failure.httpStatus !== undefined) {
    const input: { code?: number; httpStatus?: number; message?: string } = { message: failure.message };
    if (failure.code !== undefined) input.code = failure.code;
    if (failure.httpStatus !== undefined) input.httpStatus = failure.httpStatus;
    return mapProviderError(input, ctx);
  }
  // Transport failures: no HTTP answer at all.
  if (failure.kind === "retry") {
    return { condition: "remote-server-timeout", type: "wait", text: `Twilio could not be reached; try again later (${failure.message})` };
  }
  if (failure.kind === "ambiguous") {
    return {
      condition: "remote-server-timeout",
      type: "cancel",
      text: `Twilio did not confirm the message; it may or may not have been sent, so it was not resent (${failure.message})`,
    };
  }
  return { condition: "undefined-condition", type: "cancel", text: `Twilio: ${failure.message}` };
}
