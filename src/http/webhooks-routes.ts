// Admin API: webhook targets (docs/developers/design.md "HTTP surface", issue 4). The inbound token and a generated
// signing secret are shown exactly once, in the answer that creates them; reads never include them.
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { parseJid, parseUserBareJid, webhookNameProblem } from "../core/model/addresses.js";
import type { WebhookStore, WebhookTarget } from "../core/ports.js";
import { GatewayError, isGatewayError } from "../errors.js";
import { sendProblem } from "./problem.js";

export interface WebhooksRoutesDeps {
  webhooks: WebhookStore;
  /** The sender's SSRF guard: throws a GatewayError (field "url") for a URL it will not post to. */
  checkWebhookUrl(url: string): Promise<void>;
}

const nameParam = z.object({
  name: z
    .string()
    .max(200)
    .superRefine((s, ctx) => {
      const problem = webhookNameProblem(s);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
});

/** `alice@example.com` or `*@example.com`, lower-cased; undefined when it is neither. */
function allowEntry(s: string): string | undefined {
  if (!s.startsWith("*@")) return parseUserBareJid(s);
  const domain = parseJid(s.slice(2));
  return domain && !domain.local && !domain.resource ? `*@${domain.domain}` : undefined;
}

const putBody = z.object({
  url: z.url({ protocol: /^https?$/, error: "must be an absolute http:// or https:// URL" }).max(2048),
  allow: z
    .array(
      z
        .string()
        .max(3071)
        .transform((s, ctx) => {
          const entry = allowEntry(s.trim());
          if (!entry) ctx.addIssue({ code: "custom", message: "must be a bare JID such as alice@example.com, or *@example.com for everyone on a domain" });
          return entry ?? s;
        }),
    )
    .min(1, 'must list at least one JID allowed to use this webhook (e.g. ["alice@example.com"])')
    .max(1000)
    .transform((list) => [...new Set(list)]),
  secret: z.string().min(16, "must be at least 16 characters (or leave it out and one is generated)").max(1024).optional(),
});

const summary = z.object({ name: z.string(), url: z.string(), allow: z.array(z.string()) });
const created = summary.extend({ token: z.string(), secret: z.string().optional() });
const details = summary.extend({ createdAt: z.string(), updatedAt: z.string() });

const detailsOf = (t: WebhookTarget) => ({ name: t.name, url: t.url, allow: t.allow, createdAt: new Date(t.createdAt).toISOString(), updatedAt: new Date(t.updatedAt).toISOString() });
const notFound = (name: string) => ({ title: "Not Found", status: 404, detail: `There is no webhook named ${name}.` });

export function webhooksRoutes(app: FastifyInstance, deps: WebhooksRoutesDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.put("/api/v1/webhooks/:name", { schema: { params: nameParam, body: putBody, response: { 200: summary, 201: created } } }, async (request, reply) => {
    const { name } = request.params;
    const { url, allow, secret } = request.body;
    try {
      await deps.checkWebhookUrl(url);
    } catch (e) {
      // The guard names its own field; here it lives in the body.
      if (isGatewayError(e) && e.field === "url") throw new GatewayError(e.code, e.userText, { field: "body.url", cause: e });
      throw e;
    }
    const res = await deps.webhooks.put(name, { url, allow, ...(secret === undefined ? {} : { secret }) });
    // Never the URL (it may carry credentials), the token or the secret.
    request.log.info({ webhook: name, created: res.created, allow: allow.length }, res.created ? "webhook created" : "webhook updated");
    const out = { name, url: res.target.url, allow: res.target.allow };
    if (!res.created) return reply.code(200).send(out);
    return reply.code(201).send({ ...out, token: res.token!, ...(res.secret === undefined ? {} : { secret: res.secret }) });
  });

  r.get("/api/v1/webhooks/:name", { schema: { params: nameParam, response: { 200: details } } }, async (request, reply) => {
    const target = await deps.webhooks.get(request.params.name);
    return target ? detailsOf(target) : sendProblem(reply, notFound(request.params.name));
  });

  r.get("/api/v1/webhooks", { schema: { response: { 200: z.object({ webhooks: z.array(details) }) } } }, async () => ({ webhooks: (await deps.webhooks.list()).map(detailsOf) }));

  r.delete("/api/v1/webhooks/:name", { schema: { params: nameParam } }, async (request, reply) => {
    if (!(await deps.webhooks.delete(request.params.name))) return sendProblem(reply, notFound(request.params.name));
    request.log.info({ webhook: request.params.name }, "webhook deleted");
    return reply.code(204).send();
  });

  r.post("/api/v1/webhooks/:name/token", { schema: { params: nameParam, response: { 200: z.object({ name: z.string(), token: z.string() }) } } }, async (request, reply) => {
    const token = await deps.webhooks.rotateToken(request.params.name);
    if (!token) return sendProblem(reply, notFound(request.params.name));
    request.log.info({ webhook: request.params.name }, "webhook token rotated");
    return { name: request.params.name, token };
  });
}
