// SmsProvider over the real Twilio SDK. The SDK builds the request and parses the answer; the
// undici transport (request-client.ts) carries it, so retries and timeouts are ours alone.
import twilio from "twilio";
import type { MessageInstance } from "twilio/lib/rest/api/v2010/account/message.js";
import { pickOwnMessage, type ProviderMessageSummary } from "../../core/policy/lookup-match.js";
import { isMessageStatus } from "../../core/model/message.js";
import { ProviderError, type ProviderFailure, type SmsLookupRequest, type SmsLookupResult, type SmsProvider, type SmsSendRequest, type SmsSendResult } from "../../core/ports.js";
import { classifyProviderFailure } from "../../core/policy/provider-errors.js";
import { TwilioTransportError, UndiciRequestClient, type HttpAnswer } from "./request-client.js";
import { parseRetryAfter } from "./retry-after.js";

/**
 * Messages listed per lookup (one page, newest first). Later messages of the same conversation wait
 * behind this one in the outbound queue, so ours is among the newest unless the number is also used elsewhere.
 */
export const LOOKUP_LIMIT = 50;

export interface TwilioProviderOptions {
  accountSid: string;
  authToken: string;
  /** TWILIO_API_URL: replaces https://api.twilio.com (fake Twilio, recording proxy). */
  apiBaseUrl?: string;
  /** Our public base URL, e.g. https://gw.example.com/prefix; status callbacks point below it. */
  publicUrl: string;
  timeoutMs?: number;
  maxConnections?: number;
}

export type TwilioProvider = SmsProvider & { close(): Promise<void> };

/** RestException and the unexported TwilioServiceException (RFC 9457 bodies) both carry these. */
interface TwilioApiErrorLike {
  status: number;
  code?: unknown;
  message?: unknown;
  detail?: unknown;
  title?: unknown;
}

function isTwilioApiError(e: unknown): e is TwilioApiErrorLike {
  return typeof e === "object" && e !== null && typeof (e as { status?: unknown }).status === "number";
}

/** Turns whatever the SDK threw while sending into a classified failure. */
export function twilioFailure(e: unknown): ProviderFailure {
  if (e instanceof TwilioTransportError) {
    return classifyProviderFailure({ type: "transport", phase: e.kind, message: e.message });
  }
  if (isTwilioApiError(e)) {
    const code = typeof e.code === "number" && e.code > 0 ? e.code : undefined;
    const text = [e.detail, e.message, e.title].find((m): m is string => typeof m === "string" && m.length > 0);
    return classifyProviderFailure({ type: "http", status: e.status, ...(code !== undefined ? { code } : {}), ...(text ? { message: text } : {}) });
  }
  // The answer arrived but could not be used (e.g. a 2xx that is not JSON): Twilio may have sent it.
  const detail = e instanceof Error ? e.message : String(e);
  return { kind: "ambiguous", message: `unexpected answer from Twilio (${detail})` };
}

/** A listed message in the form the matching logic reads. */
export function summarize(m: Pick<MessageInstance, "sid" | "status" | "body" | "numMedia" | "dateCreated" | "errorCode">): ProviderMessageSummary {
  // The SDK leaves a date it cannot parse as the original string.
  const created: unknown = m.dateCreated;
  const createdAt = created instanceof Date ? created.getTime() : Date.parse(String(created));
  const s: ProviderMessageSummary = {
    providerId: m.sid,
    status: isMessageStatus(m.status) ? m.status : "queued",
    body: m.body ?? "",
    mediaCount: Number(m.numMedia) || 0,
    createdAt,
  };
  if (typeof m.errorCode === "number" && m.errorCode > 0) s.errorCode = m.errorCode;
  return s;
}

export function createTwilioProvider(opts: TwilioProviderOptions): TwilioProvider {
  const publicUrl = opts.publicUrl.replace(/\/+$/, "");
  const http = new UndiciRequestClient({
    ...(opts.apiBaseUrl ? { baseUrl: opts.apiBaseUrl } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.maxConnections !== undefined ? { maxConnections: opts.maxConnections } : {}),
  });
  // autoRetry is a RequestClient setting and is ignored here anyway once httpClient is given (docs/facts/twilio.md "Pointing the SDK at another base URL").
  const client = twilio(opts.accountSid, opts.authToken, { httpClient: http, autoRetry: false });

  return {
    name: "twilio",

    async send(req: SmsSendRequest): Promise<SmsSendResult> {
      let pending: ReturnType<typeof client.messages.create>;
      let answer: HttpAnswer | undefined;
      try {
        pending = http.observe(
          () =>
            client.messages.create({
              from: req.from,
              to: req.to,
              // Twilio rejects an empty Body with 21602 unless media is present; omitting it is the MMS-only form.
              ...(req.body !== "" ? { body: req.body } : {}),
              ...(req.mediaUrls.length > 0 ? { mediaUrl: req.mediaUrls } : {}),
              statusCallback: `${publicUrl}/twilio/status?id=${encodeURIComponent(req.id)}`,
            }),
          (a) => (answer = a),
        );
      } catch (e) {
        // The SDK validates parameters synchronously, before any request exists.
        const detail = e instanceof Error ? e.message : String(e);
        throw new ProviderError({ kind: "permanent", message: `invalid request for Twilio (${detail})` });
      }
      try {
        const msg = await pending;
        return { providerId: msg.sid, status: isMessageStatus(msg.status) ? msg.status : "queued" };
      } catch (e) {
        const failure = twilioFailure(e);
        const retryAfterMs = answer && answer.statusCode >= 400 ? parseRetryAfter(answer.headers["retry-after"]) : undefined;
        if (retryAfterMs !== undefined && failure.kind === "retry") failure.retryAfterMs = retryAfterMs;
        throw new ProviderError(failure);
      }
    },

    async lookup(req: SmsLookupRequest): Promise<SmsLookupResult> {
      let listed: MessageInstance[];
      try {
        // No DateSent filter: date_sent stays empty while a message is queued. Newest first.
        listed = await client.messages.list({ to: req.to, from: req.from, limit: LOOKUP_LIMIT });
      } catch (e) {
        return { unknown: twilioFailure(e).message };
      }
      return pickOwnMessage(listed.map(summarize), req, { truncated: listed.length >= LOOKUP_LIMIT });
    },

    async close(): Promise<void> {
      await http.close();
    },
  };
}
