// Liveness and readiness. Readiness means "can accept messages durably": Redis reachable, or else the
// local journal writable (inbound SMS are spooled there and replayed later). A disconnected XMPP server
// must not take the gateway out of a load balancer either, or inbound SMS would be lost, so the
// component link is reported in the body but does not fail the probe.
import type { FastifyInstance } from "fastify";

export interface HealthSource {
  redisOk(): Promise<boolean>;
  /** The inbound journal; absent = no journal (readiness then depends on Redis alone). */
  journal?(): Promise<{ writable: boolean; pending: number; error?: string }>;
  xmpp(): { online: boolean; status: string; conflict: boolean; reconnects: number; lastError?: string };
  provider: string;
}

export function healthRoutes(app: FastifyInstance, health: HealthSource): void {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    const [redis, journal] = await Promise.all([health.redisOk(), health.journal?.()]);
    const writable = journal?.writable === true;
    const xmpp = health.xmpp();
    const body = {
      // degraded: inbound SMS go to the journal until Redis is back; nothing is lost.
      status: redis ? "ready" : writable ? "degraded" : "unavailable",
      redis: redis ? "ok" : "unreachable",
      ...(journal ? { journal: { writable, pending: journal.pending, ...(journal.error ? { error: journal.error } : {}) } } : {}),
      xmpp: {
        connected: xmpp.online,
        status: xmpp.status,
        reconnects: xmpp.reconnects,
        ...(xmpp.conflict ? { note: "another component instance holds the domain (conflict); retrying" } : {}),
        ...(xmpp.lastError ? { lastError: xmpp.lastError } : {}),
      },
      provider: health.provider,
    };
    return reply.code(redis || writable ? 200 : 503).send(body);
  });
}
