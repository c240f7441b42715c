// Message in: a bot, CI job or alert adapter POSTs a message that arrives from `name@D`
// (docs/developers/design.md "Outside → XMPP" 6). Authenticated by the target's own token, not the admin token.
import type { FastifyInstance } from "fastify";
import type { AccessPolicy } from "../core/access.js";
import type { UsageCounter } from "../core/limits.js";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { parseUserBareJid, WEBHOOK_NAME } from "../core/addresses.js";
import { newMessageId, messageInKey, type XmppDelivery } from "../core/message.js";
import type { Pipeline, WebhookStore } from "../core/ports.js";
import { isAllowed } from "../core/webhook-out.js";
import { sendProblem } from "./problem.js";

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
    media: z.array(z.url({ protocol: /^https?$/ }).max(MAX_URL)).max(10).optional(),
  })
  .superRefine((v, ctx) => {
    if (!parseUserBareJid(v.to)) ctx.addIssue({ code: "custom", path: ["to"], message: "must be a bare JID such as alice@example.com" });
    const text = v.body ?? v.text ?? "";
    if (!text.trim() && !v.media?.length) ctx.addIssue({ code: "custom", path: ["body"], message: "is required (or `text`, or `media`)" });
  });

export interface MessageInDeps {
  domain: string;
  webhooks: Pick<WebhookStore, "get" | "checkToken">;
  pipeline: Pick<Pipeline, "enqueueToXmpp" | "idForDedupeKey" | "backlogFor">;
  /** Above this many waiting deliveries in the partition, answer 503 with Retry-After. */
  maxBacklog: number;
  /** ALLOWED_DOMAINS: recipients must be users of a served domain. */
  access?: AccessPolicy;
  /** Messages per minute per webhook token. */
  rate?: UsageCounter;
  onRateLimited?(): void;
  /** A message taken (fresh: not a repeated Idempotency-Key). */
  onAccepted?(fresh: boolean): void;
}

export function webhookMessagesRoute(app: FastifyInstance, deps: MessageInDeps): void {
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
        if (!token || !WEBHOOK_NAME.test(name) || !(await deps.webhooks.checkToken(name, token))) {
          reply.header("www-authenticate", 'Bearer realm="switchboard-webhook"');
          await sendProblem(reply, { title: "Unauthorized", status: 401, detail: "A valid token for this webhook is required: Authorization: Bearer <token>." });
        }
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const b = request.body;
      const to = parseUserBareJid(b.to)!;
      const target = await deps.webhooks.get(name);
      if (!target) return sendProblem(reply, { title: "Unauthorized", status: 401, detail: "A valid token for this webhook is required." });
      if (deps.access && !deps.access.allows(to)) {
        return sendProblem(reply, { title: "Forbidden", status: 403, detail: `${to} is not a user of a domain this gateway serves (${deps.access.domains.join(", ")}); messages go to those users only.`, field: "body.to" });
      }
      if (deps.rate && deps.rate.limit > 0) {
        const taken = await deps.rate.take(name, 1);
        if (!taken.ok) {
          deps.onRateLimited?.();
          reply.header("retry-after", String(Math.max(1, Math.ceil(taken.retryAfterMs / 1000))));
          return sendProblem(reply, { title: "Too Many Requests", status: 429, detail: `This token may post at most ${deps.rate.limit} messages a minute; retry after the Retry-After delay.` });
        }
      }
      if (!isAllowed(target.allow, to)) {
        return sendProblem(reply, { title: "Forbidden", status: 403, detail: `${name} may not message ${to}: it is not in the webhook's allow list.`, field: "body.to" });
      }
      const item: XmppDelivery = {
        kind: "chat",
        id: newMessageId(),
        from: `${name}@${deps.domain}`,
        to,
        body: [b.body ?? b.text ?? "", ...(b.media ?? [])].filter((s) => s.length > 0).join("\n"),
        mediaUrls: b.media ?? [],
        acceptedAt: Date.now(),
        ...(b.type ? { type: b.type } : {}),
        ...(b.subject ? { subject: b.subject } : {}),
      };
      // Its callers can retry (Twilio's cannot), so under overload this route may say "later".
      if ((await deps.pipeline.backlogFor(item)) > deps.maxBacklog) {
        reply.header("retry-after", "30");
        return sendProblem(reply, { title: "Service Unavailable", status: 503, detail: "Too many messages are waiting for delivery; retry later." });
      }
      const key = request.headers["idempotency-key"];
      // Only a marker holding one of our ids counts: one written under this key by another source
      // before keys had namespaces (e.g. a forged MessageSid) is replaced, not honoured.
      const dedupe = key ? { key: messageInKey(name, key), ownIdsOnly: true } : undefined;
      const fresh = await deps.pipeline.enqueueToXmpp(item, dedupe);
      deps.onAccepted?.(fresh);
      const id = fresh || !dedupe ? item.id : ((await deps.pipeline.idForDedupeKey(dedupe.key)) ?? item.id);
      request.log.info({ msgId: id, webhook: name, repeat: !fresh }, fresh ? "webhook message queued" : "repeated Idempotency-Key; not queued again");
      return reply.code(202).send({ id });
    },
  );
}
