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
  /** The gateway-wide breaker; a tripped breaker is reported but keeps the gateway ready (inbound still flows). */
  breaker?(): Promise<{ tripped: boolean; used: number; limit: number; resetInMs: number }>;
}

export function healthRoutes(app: FastifyInstance, health: HealthSource): void {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    const [redis, journal] = await Promise.all([health.redisOk(), health.journal?.()]);
    // The breaker lives in Redis: while Redis is away it cannot be read (and must not slow the probe).
    const breaker = redis ? await health.breaker?.().catch(() => undefined) : undefined;
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
      ...(breaker && breaker.limit > 0
        ? {
            breaker: breaker.tripped
              ? { tripped: true, note: `sending stopped: ${breaker.used} SMS segments this hour passed the limit of ${breaker.limit}; resumes in ${Math.ceil(breaker.resetInMs / 1000)} s or on DELETE /api/v1/breaker`, resetsInSeconds: Math.ceil(breaker.resetInMs / 1000) }
              : { tripped: false, segmentsThisHour: breaker.used, limitPerHour: breaker.limit },
          }
        : {}),
    };
    return reply.code(redis || writable ? 200 : 503).send(body);
  });
}
