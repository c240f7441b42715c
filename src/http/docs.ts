// API documentation: OpenAPI 3.1 built by @fastify/swagger from the zod schemas that validate each
// route (fastify-type-provider-zod's transform), plus the words below. Served as JSON at /docs/json and
// as a plain HTML page at /docs. Every route must have an entry here: a test fails on one that has none.
import swagger from "@fastify/swagger";
import type { FastifyInstance } from "fastify";
import { jsonSchemaTransform } from "fastify-type-provider-zod";

/** "admin-details": open to anyone, more in the answer with the admin token. */
type Auth = "admin" | "webhook-token" | "twilio-signature" | "none" | "media-token" | "admin-details";

interface RouteDoc {
  summary: string;
  description?: string;
  tag: "Twilio" | "Users" | "Webhooks" | "Message-in" | "Dead letters" | "Limits" | "Operations" | "Sandbox" | "Media" | "Docs";
  auth: Auth;
}

/** "METHOD /path" (Fastify's URL pattern) → its documentation. */
export const ROUTE_DOCS: Record<string, RouteDoc> = {
  "POST /twilio/sms": {
    tag: "Twilio",
    auth: "twilio-signature",
    summary: "Inbound SMS/MMS webhook",
    description:
      "Twilio posts each incoming message here (the number's messaging webhook). Answered with an empty TwiML `<Response/>` once the message is stored durably (Redis, or the local journal while Redis is away); a repeated MessageSid is acknowledged and not delivered again.",
  },
  "POST /twilio/status": {
    tag: "Twilio",
    auth: "twilio-signature",
    summary: "Message status callback",
    description:
      "Twilio reports the delivery status of an outgoing message here (the StatusCallback the gateway set, with its own message id in `id`). Status only moves forward; `delivered` becomes one XEP-0184 receipt, a failure one error reply.",
  },
  "PUT /api/v1/users/:jid": {
    tag: "Users",
    auth: "admin",
    summary: "Link a user to a number",
    description: "201 when the link is created, 200 when the JID's number is replaced, 409 when the number belongs to another JID, 400 for a JID outside ALLOWED_DOMAINS.",
  },
  "GET /api/v1/users/:jid": { tag: "Users", auth: "admin", summary: "Read one link" },
  "DELETE /api/v1/users/:jid": {
    tag: "Users",
    auth: "admin",
    summary: "Unlink a user and forget them",
    description: "Deletes the link, stored credentials, queued work (dead-lettered with a reason) and media of the user.",
  },
  "GET /api/v1/users": { tag: "Users", auth: "admin", summary: "List links" },
  "PUT /api/v1/webhooks/:name": { tag: "Webhooks", auth: "admin", summary: "Create or update a webhook target", description: "The first PUT returns the inbound token and the signing secret once." },
  "GET /api/v1/webhooks/:name": { tag: "Webhooks", auth: "admin", summary: "Read one webhook target" },
  "DELETE /api/v1/webhooks/:name": { tag: "Webhooks", auth: "admin", summary: "Delete a webhook target" },
  "GET /api/v1/webhooks": { tag: "Webhooks", auth: "admin", summary: "List webhook targets" },
  "POST /api/v1/webhooks/:name/token": {
    tag: "Webhooks",
    auth: "admin",
    summary: "Rotate a webhook target's inbound token",
    description: "The old token stops working at once; the new one is returned once.",
  },
  "POST /api/v1/webhooks/:name/messages": {
    tag: "Message-in",
    auth: "webhook-token",
    summary: "Send a message from a webhook target to an XMPP user",
    description:
      "Authenticated by the target's own token. `Idempotency-Key` makes a retry safe. 202 when queued; 403 for a recipient outside the allow list or ALLOWED_DOMAINS; 429 (per-token rate) and 503 (backlog) carry Retry-After.",
  },
  "GET /api/v1/dead-letters": { tag: "Dead letters", auth: "admin", summary: "List dead letters", description: "Newest first, with the reason; bodies are not shown." },
  "POST /api/v1/dead-letters/:id/retry": {
    tag: "Dead letters",
    auth: "admin",
    summary: "Put a dead letter back in its queue",
    description: "409 for one set aside because its user was unlinked, until that user is linked again (to the same number, for texts).",
  },
  "GET /api/v1/breaker": { tag: "Limits", auth: "admin", summary: "Read the gateway-wide breaker" },
  "DELETE /api/v1/breaker": { tag: "Limits", auth: "admin", summary: "Reset the breaker: sending resumes" },
  "POST /api/v1/test-messages": {
    tag: "Operations",
    auth: "admin",
    summary: "Send a test message either way",
    description: "From a linked JID to a phone number (an SMS, as if the user wrote it), or from a phone number to a JID (as if that SMS had arrived).",
  },
  "POST /api/v1/reconcile": {
    tag: "Operations",
    auth: "admin",
    summary: "Reconcile with the provider now",
    description:
      "Reads the provider's message list for texts the gateway never received (every instance was down, a webhook was lost) and takes them in, and fetches the final status of sent messages whose status callback never came. `since` looks further back than the last run got to (at most the shorter of DEDUPE_TTL and XMPP_DELIVERY_DEADLINE_MS). Answers when the run is over, with its counts; 409 with Retry-After while another instance runs one.",
  },
  "GET /metrics": { tag: "Operations", auth: "admin", summary: "Prometheus metrics" },
  "GET /healthz": { tag: "Operations", auth: "none", summary: "Liveness: 200 while the process runs" },
  "GET /readyz": {
    tag: "Operations",
    auth: "admin-details",
    summary: "Readiness: 200 while messages can be stored durably",
    description:
      '200 with {"status":"ready"} (Redis answers) or {"status":"degraded"} (Redis is away, the journal keeps inbound SMS); 503 with {"status":"unavailable"} when neither can store. A disconnected XMPP server does not fail it. With the admin token (Authorization: Bearer) the body also reports Redis, the journal, the component link (and its last error), the provider and the breaker; without it, or with a wrong one (counted like a failed admin-token check), only the status.',
  },
  "GET /media/:token/:name": {
    tag: "Media",
    auth: "media-token",
    summary: "A re-hosted MMS media item",
    description: "The unguessable token in the URL is the key; items expire after MEDIA_RETENTION.",
  },
  "GET /sandbox/messages": { tag: "Sandbox", auth: "admin", summary: "What the sandbox provider sent and received (SMS_PROVIDER=sandbox only)" },
  "POST /sandbox/sms": { tag: "Sandbox", auth: "admin", summary: "Inject an incoming SMS into the sandbox" },
  "GET /sandbox/events": {
    tag: "Sandbox",
    auth: "admin",
    summary: "Live sandbox messages (Server-Sent Events)",
    description:
      "text/event-stream: `ready` once subscribed, then one `message` event (the same fields as GET /sandbox/messages) for each new message and each status change; a comment heartbeat every 15 s.",
  },
  "GET /sandbox": {
    tag: "Sandbox",
    auth: "none",
    summary: "The web phone: sandbox conversations as chat threads, and a form to text the linked users",
    description: "A static page; it asks for the admin token once (kept in the tab's sessionStorage) and sends it as a bearer token on its own API calls.",
  },
  "GET /docs": { tag: "Docs", auth: "none", summary: "This documentation, as a page" },
  "GET /docs/json": { tag: "Docs", auth: "none", summary: "This documentation, as OpenAPI 3.1 JSON" },
};

const SECURITY: Record<Auth, Record<string, string[]>[]> = {
  admin: [{ adminToken: [] }],
  "webhook-token": [{ webhookToken: [] }],
  "twilio-signature": [{ twilioSignature: [] }],
  "media-token": [],
  none: [],
  // OpenAPI: either alternative; {} is "no authentication".
  "admin-details": [{}, { adminToken: [] }],
};

/** Registers the OpenAPI generator. Call before any route is added. */
export async function installDocs(app: FastifyInstance, opts: { version: string; publicUrl: string }): Promise<void> {
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const doc = methods.map((m) => ROUTE_DOCS[`${m} ${route.url}`]).find(Boolean);
    if (!doc) return; // HEAD twins and anything undocumented (the docs test lists those)
    route.schema = {
      ...route.schema,
      summary: doc.summary,
      ...(doc.description ? { description: doc.description } : {}),
      tags: [doc.tag],
      security: SECURITY[doc.auth],
    };
  });
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Switchboard",
        version: opts.version,
        description: "HTTP surface of the Switchboard XMPP ⇄ SMS and webhook gateway. Errors are application/problem+json (RFC 9457) naming the field at fault.",
      },
      servers: [{ url: opts.publicUrl }],
      components: {
        securitySchemes: {
          adminToken: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN" },
          webhookToken: { type: "http", scheme: "bearer", description: "The webhook target's own token (returned by PUT /api/v1/webhooks/{name})" },
          twilioSignature: { type: "apiKey", in: "header", name: "X-Twilio-Signature", description: "Twilio's HMAC-SHA1 request signature over PUBLIC_URL and the parameters" },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
}

/** GET /docs/json (the OpenAPI document) and GET /docs (the same, readable). */
export function docsRoutes(app: FastifyInstance): void {
  app.get("/docs/json", async () => app.swagger());
  app.get("/docs", async (_request, reply) => reply.type("text/html; charset=utf-8").send(renderDocsPage(app.swagger() as OpenApiDoc)));
}

interface OpenApiOperation {
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required?: boolean; schema?: unknown; description?: string }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
}
interface OpenApiDoc {
  info: { title: string; version: string; description?: string };
  paths?: Record<string, Record<string, OpenApiOperation>>;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A dependency-free page: one section per tag, one block per operation with its schemas. */
export function renderDocsPage(doc: OpenApiDoc): string {
  const byTag = new Map<string, string[]>();
  for (const [path, ops] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = op.tags?.[0] ?? "Other";
      const auth = op.security?.length ? op.security.map((alt) => Object.keys(alt).join(", ") || "none").join(" or ") : "none";
      const params = (op.parameters ?? []).map((p) => `<li><code>${esc(p.name)}</code> (${esc(p.in)}${p.required ? ", required" : ""})</li>`).join("");
      const body = op.requestBody?.content
        ? Object.entries(op.requestBody.content)
            .map(([type, c]) => `<p>Body (<code>${esc(type)}</code>):</p><pre>${esc(JSON.stringify(c.schema, null, 2))}</pre>`)
            .join("")
        : "";
      const responses = Object.entries(op.responses ?? {})
        .map(([code, r]) => `<li><code>${esc(code)}</code> ${esc(r.description ?? "")}${r.content ? `<pre>${esc(JSON.stringify(Object.values(r.content)[0]?.schema, null, 2))}</pre>` : ""}</li>`)
        .join("");
      const html = `<section class="op"><h3><span class="m">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code></h3><p><strong>${esc(op.summary ?? "")}</strong></p>${op.description ? `<p>${esc(op.description)}</p>` : ""}<p>Auth: ${esc(auth)}</p>${params ? `<ul>${params}</ul>` : ""}${body}${responses ? `<p>Responses:</p><ul>${responses}</ul>` : ""}</section>`;
      byTag.set(tag, [...(byTag.get(tag) ?? []), html]);
    }
  }
  const sections = [...byTag].map(([tag, ops]) => `<h2 id="${esc(tag)}">${esc(tag)}</h2>${ops.join("")}`).join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(doc.info.title)} API</title><meta name="viewport" content="width=device-width"><style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:.5rem;overflow:auto;font-size:12px}.op{border-top:1px solid #ddd;padding:.5rem 0}.m{font-family:monospace;background:#234;color:#fff;padding:0 .4rem;border-radius:3px}</style></head><body><h1>${esc(doc.info.title)} API <small>${esc(doc.info.version)}</small></h1><p>${esc(doc.info.description ?? "")}</p><p>Machine-readable: <a href="/docs/json">/docs/json</a> (OpenAPI 3.1).</p>${sections}</body></html>`;
}
