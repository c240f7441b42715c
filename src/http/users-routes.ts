// Admin API: user ⇄ number links (docs/developers/design.md "HTTP surface").
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { parseUserBareJid, toE164 } from "../core/model/addresses.js";
import type { ForgetUser } from "../core/flows/forget-user.js";
import type { AccessPolicy } from "../core/policy/access.js";
import type { LinkStore } from "../core/ports.js";
import { sendGatewayError, sendProblem } from "./problem.js";

const jidParam = z.object({
  jid: z
    .string()
    .max(3071)
    .transform((s, ctx) => {
      const bare = parseUserBareJid(s);
      if (!bare) ctx.addIssue({ code: "custom", message: "must be a bare JID such as alice@example.com (no resource)" });
      return bare ?? s;
    }),
});

const phoneBody = z.object({
  phone: z
    .string()
    .max(64)
    .transform((s, ctx) => {
      const e164 = s.trim().startsWith("+") ? toE164(s.trim()) : undefined;
      if (!e164) ctx.addIssue({ code: "custom", message: "must be a phone number in international format, e.g. +15552223333" });
      return e164 ?? s;
    }),
});

const link = z.object({ jid: z.string(), phone: z.string() });

/** `forgetUser`: what DELETE runs (core/flows/forget-user.ts); without it, DELETE removes the link only. */
export function usersRoutes(app: FastifyInstance, deps: { links: LinkStore; forgetUser?: ForgetUser; access?: AccessPolicy }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.put("/api/v1/users/:jid", { schema: { params: jidParam, body: phoneBody, response: { 200: link, 201: link } } }, async (request, reply) => {
    const { jid } = request.params;
    const { phone } = request.body;
    const refused = deps.access?.linkRefused(jid);
    if (refused) return sendGatewayError(reply, refused);
    const res = await deps.links.link(jid, phone);
    request.log.info({ jid, created: res.created }, "user linked");
    return reply.code(res.created ? 201 : 200).send({ jid, phone });
  });

  r.get("/api/v1/users/:jid", { schema: { params: jidParam, response: { 200: link } } }, async (request, reply) => {
    const phone = await deps.links.phoneOf(request.params.jid);
    if (!phone) return sendProblem(reply, { title: "Not Found", status: 404, detail: `${request.params.jid} is not linked to a number.` });
    return { jid: request.params.jid, phone };
  });

  r.delete("/api/v1/users/:jid", { schema: { params: jidParam } }, async (request, reply) => {
    // Everything kept about the user goes (link, credentials, queued work, media), even when the link
    // itself was gone already: a second DELETE finishes what an interrupted first one started.
    const removed = deps.forgetUser ? (await deps.forgetUser(request.params.jid)).removed : await deps.links.unlink(request.params.jid);
    if (!removed) {
      return sendProblem(reply, { title: "Not Found", status: 404, detail: `${request.params.jid} is not linked to a number.` });
    }
    request.log.info({ jid: request.params.jid }, "user unlinked");
    return reply.code(204).send();
  });

  r.get("/api/v1/users", { schema: { response: { 200: z.object({ users: z.array(link) }) } } }, async () => ({ users: await deps.links.list() }));
}
