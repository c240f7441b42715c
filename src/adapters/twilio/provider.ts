// SmsProvider over the real Twilio SDK. The SDK builds the request and parses the answer; the
// undici transport (request-client.ts) carries it, so retries and timeouts are ours alone.
import twilio from "twilio";
import { isMessageStatus } from "../../core/message.js";
import { ProviderError, type ProviderFailure, type SmsProvider, type SmsSendRequest, type SmsSendResult } from "../../core/ports.js";
import { classifyProviderFailure } from "../../core/provider-errors.js";
import { TwilioTransportError, UndiciRequestClient } from "./request-client.js";

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

export function createTwilioProvider(opts: TwilioProviderOptions): TwilioProvider {
  const publicUrl = opts.publicUrl.replace(/\/+$/, "");
  const http = new UndiciRequestClient({
    ...(opts.apiBaseUrl ? { baseUrl: opts.apiBaseUrl } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.maxConnections !== undefined ? { maxConnections: opts.maxConnections } : {}),
  });
  // autoRetry is a RequestClient setting and is ignored here anyway once httpClient is given (FACTS A1).
  const client = twilio(opts.accountSid, opts.authToken, { httpClient: http, autoRetry: false });
  const { authToken } = opts;

  return {
    name: "twilio",

    async send(req: SmsSendRequest): Promise<SmsSendResult> {
      let pending: ReturnType<typeof client.messages.create>;
      try {
        pending = client.messages.create({
          from: req.from,
          to: req.to,
          // Twilio rejects an empty Body with 21602 unless media is present; omitting it is the MMS-only form.
          ...(req.body !== "" ? { body: req.body } : {}),
          ...(req.mediaUrls.length > 0 ? { mediaUrl: req.mediaUrls } : {}),
          statusCallback: `${publicUrl}/twilio/status?id=${encodeURIComponent(req.id)}`,
        });
      } catch (e) {
        // The SDK validates parameters synchronously, before any request exists.
        const detail = e instanceof Error ? e.message : String(e);
        throw new ProviderError({ kind: "permanent", message: `invalid request for Twilio (${detail})` });
      }
      try {
        const msg = await pending;
        return { providerId: msg.sid, status: isMessageStatus(msg.status) ? msg.status : "queued" };
      } catch (e) {
        throw new ProviderError(twilioFailure(e));
      }
    },

    validateSignature(signature: string | undefined, url: string, params: Record<string, string | string[]>): boolean {
      if (!signature) return false;
      try {
        return twilio.validateRequest(authToken, signature, url, params);
      } catch {
        // A URL the SDK cannot parse cannot be one Twilio signed.
        return false;
      }
    },

    async close(): Promise<void> {
      await http.close();
    },
  };
}
