// RFC 9457 problem details: every error the HTTP surface answers has this shape.
import { STATUS_CODES } from "node:http";
import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { isGatewayError } from "../errors.js";

export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string;
  /** The request field at fault, e.g. `body.phone` or `params.jid`. */
  field?: string;
  [extension: string]: unknown;
}

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type("application/problem+json").send(JSON.stringify({ type: "about:blank", ...p }));
}

/** How long a client is asked to wait when the store is away (a Redis restart takes seconds). */
const STORE_DOWN_RETRY_S = 30;

/**
 * One error handler for the whole app: known errors say what is wrong, 5xx internals stay in the log.
 * `isStoreDown`: tells a failure of the store (Redis unreachable) from a bug: answered 503 with
 * Retry-After, saying nothing was stored, instead of 500.
 */
export function installProblemHandlers(app: FastifyInstance, opts: { isStoreDown?: (err: unknown) => boolean } = {}): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const first = err.validation[0]!;
      const path = first.instancePath.replace(/^\//, "").replace(/\//g, ".");
      const field = [err.validationContext, path].filter(Boolean).join(".");
      return sendProblem(reply, { title: "Bad Request", status: 400, detail: `${field || "request"}: ${first.message}`, field });
    }
    if (isGatewayError(err)) {
      if (err.httpStatus >= 500) request.log.error({ err }, "request failed");
      if (err.retryAfterMs !== undefined) reply.header("retry-after", String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
      return sendProblem(reply, { title: err.title, status: err.httpStatus, detail: err.userText, ...(err.field ? { field: err.field } : {}) });
    }
    if (opts.isStoreDown?.(err)) {
      request.log.warn({ err: err.message }, "request refused: the store is unavailable");
      reply.header("retry-after", String(STORE_DOWN_RETRY_S));
      return sendProblem(reply, { title: "Service Unavailable", status: 503, detail: "The gateway's database (Redis) is unavailable, so nothing was stored or sent. Try again in a minute." });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err }, "request failed");
      return sendProblem(reply, { title: "Internal Server Error", status, detail: "The gateway could not process the request; see its log." });
    }
    // Fastify's own client errors (body too large, bad JSON, unsupported media type) are safe to show.
    return sendProblem(reply, { title: STATUS_CODES[status] ?? "Error", status, detail: err.message });
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, { title: "Not Found", status: 404, detail: `No route ${request.method} ${request.url.split("?")[0]}` }),
  );
}
