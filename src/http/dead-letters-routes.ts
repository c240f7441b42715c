// Admin API: what the delivery engine gave up on, and putting it back.
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { retryRefusal } from "../core/flows/forget-user.js";
import type { LinkStore, MessageStore, Delivery } from "../core/ports.js";
import { sendProblem } from "./problem.js";

const deadLetter = z.object({
  id: z.string(),
  queue: z.enum(["to-xmpp", "outbound"]),
  reason: z.string(),
  at: z.string(),
  messageId: z.string(),
  kind: z.string(),
  from: z.string(),
  to: z.string(),
});

/** A Redis stream id: two unsigned 64-bit numbers (Redis refuses a larger one with an error). */
const isStreamId = (id: string) => /^\d{1,20}-\d{1,20}$/.test(id) && id.split("-").every((part) => BigInt(part) <= 0xffff_ffff_ffff_ffffn);

export function deadLettersRoutes(
  app: FastifyInstance,
  deps: { delivery: Pick<Delivery, "deadLetters" | "retryDeadLetter">; links: Pick<LinkStore, "phoneOf" | "jidOf">; messages: Pick<MessageStore, "get"> },
): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get(
    "/api/v1/dead-letters",
    { schema: { querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }), response: { 200: z.object({ deadLetters: z.array(deadLetter) }) } } },
    async (request) => {
      const list = await deps.delivery.deadLetters(request.query.limit);
      // Bodies stay out of the listing: the admin needs to know what and why, not what was said.
      return {
        deadLetters: list.map((d) => ({
          id: d.id,
          queue: d.queue,
          reason: d.reason,
          at: new Date(d.at).toISOString(),
          messageId: d.item.id,
          kind: "kind" in d.item ? d.item.kind : "sms",
          from: d.item.from,
          to: d.item.to,
        })),
      };
    },
  );

  r.post("/api/v1/dead-letters/:id/retry", { schema: { params: z.object({ id: z.string().refine(isStreamId, "must be a dead-letter id such as 1732600000000-0") }) } }, async (request, reply) => {
    const r = await deps.delivery.retryDeadLetter(request.params.id, (dl) => retryRefusal(dl, deps));
    if (r.outcome === "not-found") return sendProblem(reply, { title: "Not Found", status: 404, detail: `No dead letter ${request.params.id}.` });
    if (r.outcome === "refused") return sendProblem(reply, { title: "Conflict", status: 409, detail: r.reason });
    return reply.code(202).send({ id: request.params.id, status: "queued" });
  });
}
