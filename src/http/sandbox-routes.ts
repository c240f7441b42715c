// The sandbox provider's window: see what would have been texted, and inject an incoming SMS.
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { SandboxProvider } from "../adapters/sandbox/provider.js";
import { toE164 } from "../core/addresses.js";
import type { Inbound } from "../core/inbound.js";

const e164 = (field: string) =>
  z
    .string()
    .max(64)
    .transform((s, ctx) => {
      const n = toE164(s.trim());
      if (!n) ctx.addIssue({ code: "custom", message: `${field} must be a phone number in international format, e.g. +15552223333` });
      return n ?? s;
    });

const injectBody = z.object({
  from: z.string().min(1).max(64),
  to: e164("to"),
  body: z.string().max(1600).default(""),
  media: z.array(z.url().max(2048)).max(10).optional(),
});

export function sandboxRoutes(app: FastifyInstance, deps: { sandbox: SandboxProvider; inbound: Inbound }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get("/sandbox/messages", async () => ({
    messages: deps.sandbox.messages().map((m) => ({ id: m.id, direction: m.direction, from: m.from, to: m.to, body: m.body, media: m.media, at: m.at, status: m.status })),
  }));

  r.post("/sandbox/sms", { schema: { body: injectBody } }, async (request, reply) => {
    const { from, to, body, media = [] } = request.body;
    const providerId = `SM${randomBytes(16).toString("hex")}`;
    const res = await deps.inbound.accept({ providerId, from, to, body, media: media.map((url) => ({ url })) });
    deps.sandbox.recordInbound({ id: res.id, from, to, body, media });
    if (res.outcome === "unrouted") {
      return reply.code(202).send({ id: res.id, delivered: false, note: `no user is linked to ${to}; the message was dropped, as a real inbound SMS would be` });
    }
    return reply.code(202).send({ id: res.id, delivered: true, to: res.jid });
  });
}
