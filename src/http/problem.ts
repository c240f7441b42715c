// RFC 9457 problem details: every error the HTTP surface answers has this shape.
import { STATUS_CODES } from "node:http";
import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { isGatewayError, type GatewayError } from "../errors.js";

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
  return reply
    .code(p.status)
    .type("application/problem+json")
    .send(JSON.stringify({ type: "about:blank", ...p }));
}

/** Sets Retry-After (RFC 9110 §10.2.3) in whole seconds, at least 1: the one place it is written. */
export function setRetryAfter(reply: FastifyReply, ms: number): FastifyReply {
  return reply.header("retry-after", String(Math.max(1, Math.ceil(ms / 1000))));
}

/** A GatewayError as problem+json, with its Retry-After when it has one: how every route answers one. */
export function sendGatewayError(reply: FastifyReply, err: GatewayError): FastifyReply {
  if (err.retryAfterMs !== undefined) setRetryAfter(reply, err.retryAfterMs);
  return sendProblem(reply, { title: err.title, status: err.httpStatus, detail: err.userText, ...(err.field ? { field: err.field } : {}) });
}

/**
 * One error handler for the whole app: known errors say what is wrong, 5xx internals stay in the log.
 * `explain`: turns an error the routes did not expect (Redis unreachable) into a GatewayError, answered
 * like any other (503 + Retry-After saying nothing was stored, instead of 500).
 */
export function installProblemHandlers(app: FastifyInstance, opts: { explain?: (err: unknown) => GatewayError | undefined } = {}): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const first = err.validation[0]!;
      const path = first.instancePath.replace(/^\//, "").replace(/\//g, ".");
      const field = [err.validationContext, path].filter(Boolean).join(".");
      return sendProblem(reply, { title: "Bad Request", status: 400, detail: `${field || "request"}: ${first.message}`, field });
    }
    const known = isGatewayError(err) ? err : opts.explain?.(err);
    if (known) {
      if (known.httpStatus >= 500) request.log.error({ err }, "request failed");
      return sendGatewayError(reply, known);
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err }, "request failed");
      return sendProblem(reply, { title: "Internal Server Error", status, detail: "The gateway could not process the request; see its log." });
    }
    // Fastify's own client errors (body too large, bad JSON, unsupported media type) are safe to show.
    return sendProblem(reply, { title: STATUS_CODES[status] ?? "Error", status, detail: err.message });
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, { title: "Not Found", status: 404, detail: `No route ${request.method} ${request.url.split("?")[0]}` }));
}
