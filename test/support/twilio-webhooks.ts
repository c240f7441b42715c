// Twilio's webhooks (inbound SMS, status callbacks) as Twilio sends them: a form-encoded POST signed
// with the account's Auth Token over the URL Twilio was given (PUBLIC_URL + path) and every
// parameter (signTwilioRequest in test/fakes/fake-twilio.ts).
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { signTwilioRequest } from "../fakes/fake-twilio.js";

/** Who signs: the account's Auth Token, and the public URL the gateway is configured with (PUBLIC_URL). */
export interface TwilioSigner {
  authToken: string;
  publicUrl: string;
}

export interface SignOptions {
  /** Sign, then change the signature's first character: a signature that is well-formed but wrong. */
  badSignature?: boolean;
}

/** The body and headers of a webhook to `path` (path and query, as posted), signed as Twilio signs it. */
export function signedWebhook(signer: TwilioSigner, path: string, params: Record<string, string>, opts: SignOptions = {}): { body: string; headers: Record<string, string> } {
  const sig = signTwilioRequest(signer.authToken, signer.publicUrl + path, params);
  return {
    body: new URLSearchParams(params).toString(),
    headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": opts.badSignature ? `${sig[0] === "x" ? "y" : "x"}${sig.slice(1)}` : sig },
  };
}

/** POSTs a signed webhook to the gateway's HTTP server through Fastify's inject (no socket). */
export function postSigned(app: FastifyInstance, signer: TwilioSigner, path: string, params: Record<string, string>, opts: SignOptions = {}): Promise<LightMyRequestResponse> {
  const { body, headers } = signedWebhook(signer, path, params, opts);
  return app.inject({ method: "POST", url: path, headers, payload: body });
}

/**
 * `postSigned` bound to one gateway and signer. `app` is called at each post, so it can name a
 * gateway that a before() hook starts later.
 */
export function signedPoster(app: () => FastifyInstance, signer: TwilioSigner): (path: string, params: Record<string, string>, opts?: SignOptions) => Promise<LightMyRequestResponse> {
  return (path, params, opts) => postSigned(app(), signer, path, params, opts);
}
