// Account-level Twilio calls made with a user's own credentials (REGISTRATION=byo): find one of the
// account's numbers, and point its inbound messages at this gateway. Same SDK and undici transport
// as the sending provider, so TWILIO_API_URL (the fake in tests) applies here too.
import twilio from "twilio";
import type { IncomingPhoneNumberInstance } from "twilio/lib/rest/api/v2010/account/incomingPhoneNumber.js";
import type { AccountCredentials, ProviderAccounts, ProviderNumber } from "../../core/ports.js";
import { GatewayError } from "../../errors.js";
import { TwilioTransportError, UndiciRequestClient } from "./request-client.js";

export interface TwilioNumbersOptions {
  apiBaseUrl?: string;
  timeoutMs?: number;
}

/** Turns an SDK failure into what the user is told (never echoing the token). */
function accountError(e: unknown, doing: string): GatewayError {
  if (e instanceof TwilioTransportError) {
    return new GatewayError("unavailable", `Twilio could not be reached while ${doing}; nothing was changed. Try again in a minute.`, { cause: e });
  }
  const status = typeof e === "object" && e !== null ? (e as { status?: unknown }).status : undefined;
  const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
  const message = e instanceof Error ? e.message : String(e);
  if (status === 401 || status === 403 || code === 20003) {
    return new GatewayError(
      "unauthorized",
      "Twilio did not accept this Account SID and Auth Token (Twilio 20003: Authenticate). Copy both from the Account Info box of your Twilio console and try again.",
      { cause: e },
    );
  }
  const what = typeof code === "number" ? `Twilio ${code}: ${message}` : `Twilio answered ${String(status ?? "an error")}: ${message}`;
  return new GatewayError("internal", `Twilio refused the request while ${doing} (${what}).`, { cause: e });
}

function toProviderNumber(n: Pick<IncomingPhoneNumberInstance, "sid" | "phoneNumber" | "smsUrl" | "smsMethod" | "smsApplicationSid">): ProviderNumber {
  const out: ProviderNumber = { sid: n.sid, phone: n.phoneNumber, smsUrl: n.smsUrl ?? "" };
  if (typeof n.smsMethod === "string" && n.smsMethod) out.smsMethod = n.smsMethod.toUpperCase();
  // A number in a Messaging Service carries the service's SID (MG…) as its SMS application: the
  // service's inbound settings then apply instead of the number's own smsUrl.
  if (typeof n.smsApplicationSid === "string" && n.smsApplicationSid.startsWith("MG")) out.messagingServiceSid = n.smsApplicationSid;
  return out;
}

export function createTwilioNumbers(opts: TwilioNumbersOptions = {}): ProviderAccounts & { close(): Promise<void> } {
  const http = new UndiciRequestClient({
    ...(opts.apiBaseUrl ? { baseUrl: opts.apiBaseUrl } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    maxConnections: 4, // registrations are rare
  });
  const clientFor = (creds: AccountCredentials) => twilio(creds.accountSid, creds.authToken, { httpClient: http, autoRetry: false });

  return {
    async findNumber(creds, phone) {
      let listed: IncomingPhoneNumberInstance[];
      try {
        listed = await clientFor(creds).incomingPhoneNumbers.list({ phoneNumber: phone, limit: 20 });
      } catch (e) {
        throw accountError(e, "checking your number");
      }
      // PhoneNumber is a pattern filter at Twilio: keep the exact match only.
      const found = listed.find((n) => n.phoneNumber === phone);
      return found ? toProviderNumber(found) : undefined;
    },

    async setSmsUrl(creds, numberSid, url) {
      try {
        await clientFor(creds).incomingPhoneNumbers(numberSid).update({ smsUrl: url, smsMethod: "POST" });
      } catch (e) {
        throw accountError(e, "pointing your number at this gateway");
      }
    },

    close: () => http.close(),
  };
}
