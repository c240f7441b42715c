// Admin API: the gateway-wide breaker (read it, reset it early) and the Prometheus metrics.
import type { FastifyInstance } from "fastify";
import type { SendLimits } from "../core/policy/limits.js";
import type { Metrics } from "../metrics.js";

export function limitsRoutes(app: FastifyInstance, deps: { limits?: Pick<SendLimits, "breakerStatus" | "resetBreaker">; metrics?: Metrics }): void {
  const limits = deps.limits;
  if (limits) {
    app.get("/api/v1/breaker", async () => {
      const s = await limits.breakerStatus();
      return { tripped: s.tripped, segmentsThisHour: s.used, limitPerHour: s.limit, resetsInSeconds: Math.ceil(s.resetInMs / 1000) };
    });
    app.delete("/api/v1/breaker", async (request, reply) => {
      await limits.resetBreaker();
      request.log.warn({}, "breaker reset by an operator: sending resumes");
      return reply.code(204).send();
    });
  }
  const metrics = deps.metrics;
  if (metrics) {
    app.get("/metrics", async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.render()));
  }
}
