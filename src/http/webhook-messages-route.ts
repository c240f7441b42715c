// Message in: a bot, CI job or alert adapter POSTs a message that arrives from `name@D`
// (docs/developers/design.md "Outside → XMPP" 6). The flow and its decisions are the core's
// (core/flows/webhook-in.ts); this route parses the request, checks the target's own token (not the admin
// token) before the body is looked at, and answers the outcome or the refusal as problem+json.
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { parseUserBareJid, WEBHOOK_NAME } from "../core/model/addresses.js";
import type { WebhookIn } from "../core/flows/webhook-in.js";
import { isGatewayError } from "../errors.js";
import { sendGatewayError, sendProblem } from "./problem.js";

const MAX_BODY = 10_000;
const MAX_URL = 2048;

const messageIn = z
  .object({
    to: z.string().max(3071),
    body: z.string().max(MAX_BODY).optional(),
    // Slack-style senders post `text`.
    text: z.string().max(MAX_BODY).optional(),
    type: z.enum(["chat", "normal", "headline"]).optional(),
    subject: z.string().max(256).optional(),
    // Each URL is written twice into the stanza (body and XEP-0066): bounded so that a message always
    // fits the XMPP server's stanza limit (Prosody: 512 KiB), which would otherwise close the link.
    media: z
      .array(z.url({ protocol: /^https?$/ }).max(MAX_URL))
      .max(10)
      .optional(),
  })
  .superRefine((v, ctx) => {
    if (!parseUserBareJid(v.to)) ctx.addIssue({ code: "custom", path: ["to"], message: "must be a bare JID such as alice@example.com" });
    const text = v.body ?? v.text ?? "";
    if (!text.trim() && !v.media?.length) ctx.addIssue({ code: "custom", path: ["body"], message: "is required (or `text`, or `media`)" });
  });

export function webhookMessagesRoute(app: FastifyInstance, deps: { webhookIn: Pick<WebhookIn, "authenticate" | "accept"> }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post(
    "/api/v1/webhooks/:name/messages",
    {
      schema: {
        params: z.object({ name: z.string().regex(WEBHOOK_NAME, "must be a webhook name") }),
        headers: z.looseObject({ "idempotency-key": z.string().min(1).max(255).optional() }),
        body: messageIn,
      },
      // The token is checked before the body is looked at: strangers learn nothing from validation.
      preValidation: async (request, reply) => {
        const name = (request.params as { name?: string }).name ?? "";
        const token = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "")?.[1]?.trim() ?? "";
        if (!(await deps.webhookIn.authenticate(name, token))) {
          reply.header("www-authenticate", 'Bearer realm="switchboard-webhook"');
          await sendProblem(reply, { title: "Unauthorized", status: 401, detail: "A valid token for this webhook is required: Authorization: Bearer <token>." });
        }
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const b = request.body;
      const key = request.headers["idempotency-key"];
      try {
        const res = await deps.webhookIn.accept({
          name,
          to: parseUserBareJid(b.to)!,
          text: b.body ?? b.text ?? "",
          media: b.media ?? [],
          ...(b.type ? { type: b.type } : {}),
          ...(b.subject ? { subject: b.subject } : {}),
          ...(key ? { idempotencyKey: key } : {}),
        });
        const repeat = res.outcome === "repeat";
        request.log.info({ msgId: res.id, webhook: name, repeat }, repeat ? "repeated Idempotency-Key; not queued again" : "webhook message queued");
        return reply.code(202).send({ id: res.id });
      } catch (err) {
        // Refusals are the caller's to act on (and an overload refusal is no server fault to log);
        // anything else (the store is away) takes the app's error handler.
        if (isGatewayError(err)) return sendGatewayError(reply, err);
        throw err;
      }
    },
  );
}
