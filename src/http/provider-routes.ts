// The SMS provider's webhooks: inbound messages and delivery status (docs/developers/design.md
// "Outside → XMPP"). The provider's adapter proves and reads them (core/ports.ts ProviderWebhooks; for
// Twilio: adapters/twilio/webhooks.ts); this only passes them in and answers.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Inbound } from "../core/flows/sms-in.js";
import type { ProviderWebhooks } from "../core/ports.js";
import { isGatewayError } from "../errors.js";

export interface ProviderRoutesDeps {
  publicUrl: string;
  webhooks: ProviderWebhooks;
  /** The accept path (Redis, or the journal while Redis is away) and the status path. */
  inbound: Pick<Inbound, "accept" | "applyCallback">;
}

export function providerRoutes(app: FastifyInstance, deps: ProviderRoutesDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { webhooks } = deps;
  const signers = new WeakMap<FastifyRequest, string>();

  // Before the body is validated: a forged request gets 403 and nothing else.
  const authenticate =
    (kind: "inbound" | "status") =>
    async (request: FastifyRequest): Promise<void> => {
      try {
        const signer = await webhooks.authenticate(kind, { url: deps.publicUrl + request.url, headers: request.headers, body: request.body ?? {} });
        if (signer.account) signers.set(request, signer.account);
      } catch (err) {
        if (isGatewayError(err) && err.code === "forbidden") request.log.warn({ path: request.url.split("?")[0] }, err.message);
        throw err;
      }
    };
  const answer = (reply: FastifyReply) => reply.type(webhooks.answer.contentType).send(webhooks.answer.body);

  r.post(webhooks.paths.inbound, { preValidation: authenticate("inbound"), schema: { body: webhooks.schemas.inbound } }, async (request, reply) => {
    // Resolves only once the message is in Redis or, while Redis is away, on disk in the journal: a
    // provider may never redeliver. Neither can store it → 503, so the provider may retry or fall back.
    await deps.inbound.accept(webhooks.readInbound(request.body, signers.get(request)));
    return answer(reply);
  });

  r.post(webhooks.paths.status, { preValidation: authenticate("status"), schema: { body: webhooks.schemas.status } }, async (request, reply) => {
    const signer = signers.get(request);
    // Applied only when the signing account sent this message and names its provider id (core/flows/sms-in.ts).
    await deps.inbound.applyCallback({ ...webhooks.readStatus(request.body, request.query), ...(signer ? { signer } : {}) });
    return answer(reply);
  });
}
