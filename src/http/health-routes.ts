// Liveness and readiness. Readiness means "can accept messages durably" (Redis reachable): a
// disconnected XMPP server must not take the gateway out of a load balancer, or inbound SMS would be
// lost, so the component link is reported in the body but does not fail the probe.
import type { FastifyInstance } from "fastify";

export interface HealthSource {
  redisOk(): Promise<boolean>;
  xmpp(): { online: boolean; status: string; conflict: boolean; reconnects: number; lastError?: string };
  provider: string;
}

export function healthRoutes(app: FastifyInstance, health: HealthSource): void {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    const redis = await health.redisOk();
    const xmpp = health.xmpp();
    const body = {
      status: redis ? "ready" : "unavailable",
      redis: redis ? "ok" : "unreachable",
      xmpp: {
        connected: xmpp.online,
        status: xmpp.status,
        reconnects: xmpp.reconnects,
        ...(xmpp.conflict ? { note: "another component instance holds the domain (conflict); retrying" } : {}),
        ...(xmpp.lastError ? { lastError: xmpp.lastError } : {}),
      },
      provider: health.provider,
    };
    return reply.code(redis ? 200 : 503).send(body);
  });
}
