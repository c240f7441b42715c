// The sandbox provider's window: see what would have been texted, and inject an incoming SMS.
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { SandboxMessage, SandboxProvider } from "../adapters/sandbox/provider.js";
import { toE164 } from "../core/model/addresses.js";
import type { Inbound } from "../core/flows/sms-in.js";
import { SANDBOX_PAGE, SANDBOX_PAGE_CSP } from "./sandbox-page.js";

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

const view = (m: SandboxMessage) => ({ id: m.id, direction: m.direction, from: m.from, to: m.to, body: m.body, media: m.media, at: m.at, status: m.status });

/** A stream that has this much unsent output is a reader that stopped reading: it is cut. */
const MAX_BUFFERED = 1024 * 1024;

/** GET /sandbox: the web phone page. No token to load it: the page asks for one and sends it on its API calls. */
export function sandboxPageRoute(app: FastifyInstance): void {
  app.get("/sandbox", async (_request, reply) =>
    reply
      .type("text/html; charset=utf-8")
      .header("content-security-policy", SANDBOX_PAGE_CSP)
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .header("cache-control", "no-store")
      .send(SANDBOX_PAGE),
  );
}

export function sandboxRoutes(app: FastifyInstance, deps: { sandbox: SandboxProvider; inbound: Inbound; heartbeatMs?: number }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const heartbeatMs = deps.heartbeatMs ?? 15_000;

  r.get("/sandbox/messages", async () => ({
    messages: deps.sandbox.messages().map(view),
  }));

  // Server-Sent Events, read by the page with fetch() (so the token travels in the Authorization
  // header, never in a URL). Open streams are ended before the server closes, or close would wait on them.
  const streams = new Set<() => void>();
  app.addHook("preClose", async () => {
    for (const end of [...streams]) end();
  });
  r.get("/sandbox/events", async (request, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
      "x-content-type-options": "nosniff",
      // Not reused once ended: a kept-alive socket would hold a closing server for its idle timeout.
      connection: "close",
    });
    const write = (chunk: string): void => {
      if (res.writableEnded || res.destroyed) return;
      if (res.writableLength > MAX_BUFFERED) return void res.destroy();
      res.write(chunk);
    };
    const off = deps.sandbox.onMessage((m) => write(`event: message\ndata: ${JSON.stringify(view(m))}\n\n`));
    const beat = setInterval(() => write(": heartbeat\n\n"), heartbeatMs);
    beat.unref();
    let released = false;
    const cleanup = (): void => {
      if (released) return;
      released = true;
      off();
      clearInterval(beat);
      streams.delete(end);
    };
    const end = (): void => {
      cleanup();
      if (!res.writableEnded) res.end();
    };
    streams.add(end);
    res.once("close", cleanup);
    request.log.debug("sandbox event stream opened");
    write(`retry: 2000\nevent: ready\ndata: {}\n\n`);
  });

  r.post("/sandbox/sms", { schema: { body: injectBody } }, async (request, reply) => {
    const { from, to, body, media = [] } = request.body;
    const providerId = `SM${randomBytes(16).toString("hex")}`;
    const res = await deps.inbound.accept({ providerId, from, to, body, media: media.map((url) => ({ url })) });
    deps.sandbox.recordInbound({ id: res.id, providerId, from, to, body, media });
    if (res.outcome === "unrouted") {
      return reply.code(202).send({ id: res.id, delivered: false, note: `no user is linked to ${to}; the message was dropped, as a real inbound SMS would be` });
    }
    return reply.code(202).send({ id: res.id, delivered: true, to: res.jid });
  });
}
