// Twilio's webhooks, read and proven: inbound SMS/MMS and delivery status (docs/facts/twilio.md).
// Everything Twilio-specific about them is here — the form fields and their shapes, the
// X-Twilio-Signature check (HMAC-SHA1 over the URL and every posted parameter, with the Auth Token of
// the account that sent it), which account a request speaks for, the TwiML answer — so that the HTTP
// face only passes requests in and answers out (src/http/provider-routes.ts).
import twilio from "twilio";
import { z } from "zod";
import type { InboundSms } from "../../core/flows/sms-in.js";
import type { ProviderStatusReport, ProviderWebhookRequest, ProviderWebhooks, WebhookSigner } from "../../core/ports.js";
import type { AccountProviders } from "../../core/policy/provider-router.js";
import { GatewayError } from "../../errors.js";

/** What Twilio expects once a webhook is handled: empty TwiML (no reply text). */
export const TWIML_ANSWER = { contentType: "text/xml", body: '<?xml version="1.0" encoding="UTF-8"?><Response/>' } as const;
const MAX_MEDIA = 10; // Twilio's own limit per message

// A Twilio message SID: SM (SMS) or MM (MMS) and 32 hex digits. Checked by shape, so that a signed
// webhook cannot carry an arbitrary string into the gateway's idempotency keys.
const messageSid = z.string().regex(/^(SM|MM)[0-9a-fA-F]{32}$/, "must be a Twilio message SID: SM or MM followed by 32 hex digits");

// Twilio adds fields over time: unknown ones pass through (zod passthrough).
export const inboundSchema = z.looseObject({
  MessageSid: messageSid,
  From: z.string().min(1).max(64),
  To: z.string().min(1).max(64),
  Body: z.string().max(10_000).default(""),
  NumMedia: z.coerce.number().int().min(0).max(MAX_MEDIA).default(0),
});

export const statusSchema = z.looseObject({
  MessageSid: messageSid,
  // The sending number: with a user's own account it must be one registered under it (authenticate).
  From: z.string().min(1).max(64),
  MessageStatus: z.string().min(1).max(32),
  ErrorCode: z.coerce.number().int().optional(),
});

/** Our message id rides in the status callback URL (adapters/twilio/provider.ts sets it). */
const statusQuery = z.object({ id: z.string().min(1).max(64).optional() });

type Params = Record<string, string | string[]>;

/** True when `signature` is Twilio's signature of `url` and `params` with `authToken`. */
export function isTwilioSignature(authToken: string, signature: string | undefined, url: string, params: Params): boolean {
  if (!signature) return false;
  try {
    return twilio.validateRequest(authToken, signature, url, params);
  } catch {
    // A URL the SDK cannot parse cannot be one Twilio signed.
    return false;
  }
}

/**
 * The URLs a signature may cover. Twilio connection overrides (`https://…/twilio/sms#rc=3&rp=all`) live
 * in the URL fragment, which HTTP never transmits, so the URL we rebuild has none. Whether Twilio's
 * signature covers the fragment is not documented: with the overrides configured, a signature over
 * either form is accepted (both need the auth token, so nothing is weakened).
 */
export function signedUrls(url: string, fragment: string | undefined): string[] {
  return fragment ? [url, `${url}#${fragment}`] : [url];
}

/** Reads an inbound SMS/MMS webhook body (already validated against inboundSchema). */
export function readTwilioInbound(body: unknown, account: string | undefined): InboundSms {
  const b = body as z.output<typeof inboundSchema> & Record<string, unknown>;
  const media: { url: string; contentType?: string }[] = [];
  for (let i = 0; i < b.NumMedia; i++) {
    const url = b[`MediaUrl${i}`];
    const type = b[`MediaContentType${i}`];
    if (typeof url === "string" && /^https?:\/\//.test(url)) media.push({ url, ...(typeof type === "string" ? { contentType: type } : {}) });
  }
  // Twilio's OptOutType (STOP/START/HELP), sent when a Messaging Service's Advanced Opt-Out matched.
  const optOutType = typeof b.OptOutType === "string" && b.OptOutType ? { optOutType: b.OptOutType.slice(0, 16) } : {};
  return { providerId: b.MessageSid, ...(account ? { account } : {}), from: b.From, to: b.To, body: b.Body, media, ...optOutType };
}

/** Reads a status callback (body validated against statusSchema; the query as received). */
export function readTwilioStatus(body: unknown, query: unknown): ProviderStatusReport {
  const b = body as z.output<typeof statusSchema>;
  const q = statusQuery.safeParse(query ?? {});
  const id = q.success ? q.data.id : undefined;
  return { providerId: b.MessageSid, status: b.MessageStatus.toLowerCase(), ...(id ? { id } : {}), ...(b.ErrorCode !== undefined ? { errorCode: b.ErrorCode } : {}) };
}

export interface TwilioWebhooksOptions {
  /** The gateway's own account: its webhooks, and any not from a user's own account, are checked with its token. */
  mainAccountSid: string;
  mainAuthToken: string;
  /** TWILIO_URL_FRAGMENT: connection overrides set on the webhook URLs. */
  urlFragment?: string;
  /** Users' own accounts (REGISTRATION=byo): their webhooks are signed with their own token. */
  accounts?: AccountProviders;
}

export function createTwilioWebhooks(opts: TwilioWebhooksOptions): ProviderWebhooks {
  /**
   * The account whose token must have signed this request: a user's own account when the posted
   * AccountSid is one (REGISTRATION=byo), else the gateway's. `numbers`: the only numbers such an
   * account may speak for, so a user holding their own token cannot forge texts to another user's number.
   */
  async function signerFor(params: Params): Promise<{ account: string; token: string; numbers?: string[] }> {
    const main = { account: opts.mainAccountSid, token: opts.mainAuthToken };
    const sid = params.AccountSid;
    if (!opts.accounts || typeof sid !== "string" || sid === opts.mainAccountSid) return main;
    const own = await opts.accounts.get(sid).catch((err: unknown) => {
      throw new GatewayError("unavailable", "The gateway cannot look up this account right now; retry later.", { cause: err });
    });
    return own ? { account: sid, token: own.authToken, numbers: own.numbers } : main;
  }

  // The signature covers PUBLIC_URL + the path and query as received, and every posted parameter.
  // Checked before the body is validated, so a forged request gets 403 and nothing else. `ours`: the
  // parameter that holds our number (To of an inbound text, From of a status callback).
  async function authenticate(kind: "inbound" | "status", req: ProviderWebhookRequest): Promise<WebhookSigner> {
    const params = (req.body ?? {}) as Params;
    const sig = req.headers["x-twilio-signature"];
    const signer = await signerFor(params);
    const signature = typeof sig === "string" ? sig : undefined;
    if (!signedUrls(req.url, opts.urlFragment).some((url) => isTwilioSignature(signer.token, signature, url, params))) {
      throw new GatewayError("forbidden", "Invalid X-Twilio-Signature.", { logText: "bad Twilio signature" });
    }
    const ours = kind === "inbound" ? "To" : "From";
    const number = params[ours];
    if (signer.numbers && (typeof number !== "string" || !signer.numbers.includes(number))) {
      throw new GatewayError("forbidden", `${ours} is not a number registered with this account.`, { logText: "signed by a user's own account for a number not registered under it" });
    }
    return { account: signer.account };
  }

  return {
    paths: { inbound: "/twilio/sms", status: "/twilio/status" },
    schemas: { inbound: inboundSchema, status: statusSchema },
    authenticate,
    readInbound: readTwilioInbound,
    readStatus: readTwilioStatus,
    answer: TWIML_ANSWER,
  };
}
