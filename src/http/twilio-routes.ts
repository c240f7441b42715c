// Twilio's webhooks: inbound SMS/MMS and delivery status (docs/developers/design.md "Outside → XMPP").
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Inbound } from "../core/inbound.js";
import type { AccountProviders } from "../core/provider-router.js";
import { isMessageStatus } from "../core/message.js";
import type { MessageStore, SmsProvider } from "../core/ports.js";
import { GatewayError } from "../errors.js";
import { sendProblem } from "./problem.js";

const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>';
const MAX_MEDIA = 10; // Twilio's own limit per message

// A Twilio message SID: SM (SMS) or MM (MMS) and 32 hex digits. Checked by shape, so that a signed
// webhook cannot carry an arbitrary string into the gateway's idempotency keys.
const messageSid = z.string().regex(/^(SM|MM)[0-9a-fA-F]{32}$/, "must be a Twilio message SID: SM or MM followed by 32 hex digits");

// Twilio adds fields over time: unknown ones pass through (zod passthrough).
const inboundSchema = z.looseObject({
  MessageSid: messageSid,
  From: z.string().min(1).max(64),
  To: z.string().min(1).max(64),
  Body: z.string().max(10_000).default(""),
  NumMedia: z.coerce.number().int().min(0).max(MAX_MEDIA).default(0),
});

const statusSchema = z.looseObject({
  MessageSid: messageSid,
  // The sending number: with a user's own account it must be one registered under it (checkSignature).
  From: z.string().min(1).max(64),
  MessageStatus: z.string().min(1).max(32),
  ErrorCode: z.coerce.number().int().optional(),
});

const statusQuery = z.object({ id: z.string().min(1).max(64).optional() });

/**
 * Twilio connection overrides (`https://…/twilio/sms#rc=3&rp=all`) live in the URL fragment, which HTTP
 * never transmits, so the URL we rebuild has none. Whether Twilio's signature covers the fragment is not
 * documented: with the overrides configured, a signature over either form is accepted (both need the
 * auth token, so nothing is weakened).
 */
export function withUrlFragment<P extends SmsProvider>(provider: P, fragment: string | undefined): P {
  if (!fragment) return provider;
  const validate = provider.validateSignature.bind(provider);
  return Object.assign(Object.create(provider) as P, {
    validateSignature: (signature: string | undefined, url: string, params: Record<string, string | string[]>) =>
      validate(signature, url, params) || validate(signature, `${url}#${fragment}`, params),
  });
}

export interface TwilioRoutesDeps {
  publicUrl: string;
  provider: SmsProvider;
  inbound: Inbound;
  messages: MessageStore;
  /** Users' own accounts (REGISTRATION=byo): their webhooks are signed with their own token. */
  accounts?: AccountProviders;
  /** The gateway's own AccountSid: its webhooks always take the main path. */
  mainAccountSid?: string;
}

export function twilioRoutes(app: FastifyInstance, deps: TwilioRoutesDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  /**
   * The provider whose token signed this request: a user's own account when the posted AccountSid is
   * one (REGISTRATION=byo), else the gateway's. `account`: that account's SID, which then travels with
   * what the request carries (media, idempotency, status) — the account that signed, never one the
   * request names. `numbers`: the only numbers such an account may speak for here, so a user holding
   * their own token cannot forge texts to another user's number.
   */
  async function signerFor(params: Record<string, string | string[]>): Promise<{ provider: SmsProvider; account?: string; numbers?: string[] }> {
    const main = { provider: deps.provider, ...(deps.mainAccountSid ? { account: deps.mainAccountSid } : {}) };
    const sid = params.AccountSid;
    if (!deps.accounts || typeof sid !== "string" || sid === deps.mainAccountSid) return main;
    const own = await deps.accounts.get(sid).catch((err: unknown) => {
      throw new GatewayError("unavailable", "The gateway cannot look up this account right now; retry later.", { cause: err });
    });
    return own ? { ...own, account: sid } : main;
  }
  const signers = new WeakMap<FastifyRequest, string>();

  // The signature covers PUBLIC_URL + the path and query as received, and every posted parameter.
  // Checked before validation so a forged request gets 403 and nothing else. `ours`: the parameter
  // that holds our number (To of an inbound text, From of a status callback).
  const checkSignature = (ours: "To" | "From") => async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const sig = request.headers["x-twilio-signature"];
    const params = (request.body ?? {}) as Record<string, string | string[]>;
    const url = deps.publicUrl + request.url;
    const signer = await signerFor(params);
    if (!signer.provider.validateSignature(typeof sig === "string" ? sig : undefined, url, params)) {
      request.log.warn({ path: request.url.split("?")[0] }, "bad Twilio signature");
      await sendProblem(reply, { title: "Forbidden", status: 403, detail: "Invalid X-Twilio-Signature." });
      return;
    }
    const number = params[ours];
    if (signer.numbers && (typeof number !== "string" || !signer.numbers.includes(number))) {
      request.log.warn({ path: request.url.split("?")[0] }, "signed by a user's own account for a number not registered under it");
      await sendProblem(reply, { title: "Forbidden", status: 403, detail: `${ours} is not a number registered with this account.` });
      return;
    }
    if (signer.account) signers.set(request, signer.account);
  };

  r.post("/twilio/sms", { preValidation: checkSignature("To"), schema: { body: inboundSchema } }, async (request, reply) => {
    const b = request.body as z.output<typeof inboundSchema> & Record<string, unknown>;
    const media: { url: string; contentType?: string }[] = [];
    for (let i = 0; i < b.NumMedia; i++) {
      const url = b[`MediaUrl${i}`];
      const type = b[`MediaContentType${i}`];
      if (typeof url === "string" && /^https?:\/\//.test(url)) media.push({ url, ...(typeof type === "string" ? { contentType: type } : {}) });
    }
    // Resolves only once the message is in Redis or, while Redis is away, on disk in the journal:
    // Twilio never redelivers (docs/facts/twilio.md "Webhook signatures and delivery"). Neither can store it → 503, so Twilio may retry (#rc/#rp) or
    // fall back to the number's Fallback URL.
    const optOutType = typeof b.OptOutType === "string" && b.OptOutType ? { optOutType: b.OptOutType.slice(0, 16) } : {};
    const account = signers.get(request);
    await deps.inbound.accept({ providerId: b.MessageSid, ...(account ? { account } : {}), from: b.From, to: b.To, body: b.Body, media, ...optOutType });
    return reply.type("text/xml").send(EMPTY_TWIML);
  });

  r.post("/twilio/status", { preValidation: checkSignature("From"), schema: { body: statusSchema, querystring: statusQuery } }, async (request, reply) => {
    const b = request.body;
    // Our id rides in the callback URL, so a callback that beats the create's answer still matches.
    // Without our id the SID must be looked up in Redis; if that fails, 503 (Twilio may retry) as below.
    const id =
      request.query.id ??
      (await deps.messages.idForProviderId(b.MessageSid).catch((err: unknown) => {
        throw new GatewayError("unavailable", "The gateway cannot look up messages right now; retry later.", { cause: err });
      }));
    const status = b.MessageStatus.toLowerCase();
    if (!id || !isMessageStatus(status)) {
      request.log.warn({ msgId: id, sid: b.MessageSid, status }, "status callback not matched");
      return reply.type("text/xml").send(EMPTY_TWIML);
    }
    // Applied only when the signing account sent this message and the SID is its own (core/inbound.ts).
    const signer = signers.get(request);
    await deps.inbound.applyCallback({ id, providerId: b.MessageSid, ...(signer ? { signer } : {}), status, ...(b.ErrorCode !== undefined ? { errorCode: b.ErrorCode } : {}) });
    return reply.type("text/xml").send(EMPTY_TWIML);
  });
}
