// Liveness and readiness. Readiness means "can accept messages durably": Redis reachable, or else the
// local journal writable (inbound SMS are spooled there and replayed later). A disconnected XMPP server
// must not take the gateway out of a load balancer either, or inbound SMS would be lost, so the
// component link is reported in the body but does not fail the probe.
//
// Anyone (a load balancer, a stranger) gets the status code and the one-word status; the details (the
// XMPP server's host and port in lastError, journal errors, breaker counts) need the admin token, as
// the CLI's doctor sends it. A probe without a token is not counted as a failed admin-token check; a
// wrong token is, like on any admin route, so /readyz is no way around that limit. A wrong or
// locked-out token still gets the short body with the real status code: probes never see a 401 or 429.
import type { FastifyInstance, FastifyRequest } from "fastify";

/** How the gateway reaches Redis, for the admin details. */
export interface RedisDetails {
  mode: "single" | "sentinel";
  /** host:port of the Redis that takes the writes (the primary the Sentinels named); absent while none answers. */
  primary?: string;
  /** REDIS_MIN_REPLICAS > 0: the replicas the primary has (INFO replication) and whether writes can be confirmed. */
  replicas?: { required: number; connected?: number; inSync?: number; behindSince?: number; reason?: string };
}

export interface HealthSource {
  redisOk(): Promise<boolean>;
  /** False while writes cannot be confirmed on REDIS_MIN_REPLICAS replicas (inbound SMS then go to the journal). */
  replicasOk?(): boolean;
  redisDetails?(): RedisDetails;
  /** The inbound journal; absent = no journal (readiness then depends on Redis alone). */
  journal?(): Promise<{ writable: boolean; pending: number; error?: string }>;
  xmpp(): { online: boolean; status: string; conflict: boolean; reconnects: number; lastError?: string };
  provider: string;
  /** This instance's leases, when it is one of several (src/app/cluster.ts). */
  cluster?(): { instance: string; live: string[]; link: { heldHere: boolean; token?: number; heldSince?: number }; partitions: number[]; nameTaken: boolean; leasesLost: number };
  /** Which instance holds the XMPP link, as Redis says. */
  linkHolder?(): Promise<{ holder: string; token: number; ttlMs: number } | undefined>;
  /** The gateway-wide breaker; a tripped breaker is reported but keeps the gateway ready (inbound still flows). */
  breaker?(): Promise<{ tripped: boolean; used: number; limit: number; resetInMs: number }>;
}

export interface ReadyzAccess {
  /**
   * Whether the request carries the admin token (and its address is not locked out); asked only when
   * it sends an Authorization header. `redisOk: false`: the failure count (in Redis) is not consulted,
   * as on the admin routes while Redis is away, so that a silent Redis cannot stall the probe.
   */
  isAdmin(request: FastifyRequest, redisOk: boolean): Promise<boolean>;
}

/** Without `access`, nobody gets the details. */
export function healthRoutes(app: FastifyInstance, health: HealthSource, access?: ReadyzAccess): void {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (request, reply) => {
    const [redis, journal] = await Promise.all([health.redisOk(), health.journal?.()]);
    const admin = access && request.headers.authorization !== undefined ? await access.isAdmin(request, redis).catch(() => false) : false;
    const writable = journal?.writable === true;
    // Writes the replicas cannot confirm are refused as if Redis were away.
    const durable = redis && (health.replicasOk?.() ?? true);
    // degraded: inbound SMS go to the journal until Redis (or its replicas) are back; nothing is lost.
    const status = durable ? "ready" : writable ? "degraded" : "unavailable";
    const code = durable || writable ? 200 : 503;
    if (!admin) return reply.code(code).send({ status });
    // The breaker lives in Redis: while Redis is away it cannot be read (and must not slow the probe).
    const breaker = redis ? await health.breaker?.().catch(() => undefined) : undefined;
    const xmpp = health.xmpp();
    const cluster = health.cluster?.();
    const holder = redis && cluster && !cluster.link.heldHere ? await health.linkHolder?.().catch(() => undefined) : undefined;
    const body = {
      status,
      redis: redis ? (durable ? "ok" : "replicas behind") : "unreachable",
      ...(health.redisDetails ? { redisSetup: health.redisDetails() } : {}),
      ...(journal ? { journal: { writable, pending: journal.pending, ...(journal.error ? { error: journal.error } : {}) } } : {}),
      xmpp: {
        connected: xmpp.online,
        status: xmpp.status,
        reconnects: xmpp.reconnects,
        ...(xmpp.conflict
          ? { note: "another component holds the domain (conflict: outside this deployment's leases, e.g. a gateway on another Redis); retrying" }
          : cluster && !cluster.link.heldHere
            ? { note: holder ? `standby: instance ${holder.holder} holds the XMPP link` : "standby: no instance holds the XMPP link right now; taking it" }
            : {}),
        ...(xmpp.lastError ? { lastError: xmpp.lastError } : {}),
      },
      ...(cluster
        ? {
            cluster: {
              instance: cluster.instance,
              liveInstances: cluster.live,
              xmppLink: cluster.link.heldHere
                ? { heldHere: true, token: cluster.link.token, heldForSeconds: Math.round((Date.now() - (cluster.link.heldSince ?? Date.now())) / 1000) }
                : { heldHere: false, ...(holder ? { holder: holder.holder, token: holder.token } : {}) },
              outboundPartitions: cluster.partitions,
              leasesLost: cluster.leasesLost,
              ...(cluster.nameTaken ? { note: `another running process uses INSTANCE_ID=${cluster.instance}; waiting for it to expire (fatal if it does not)` } : {}),
            },
          }
        : {}),
      provider: health.provider,
      ...(breaker && breaker.limit > 0
        ? {
            breaker: breaker.tripped
              ? {
                  tripped: true,
                  note: `sending stopped: ${breaker.used} SMS segments this hour passed the limit of ${breaker.limit}; resumes in ${Math.ceil(breaker.resetInMs / 1000)} s or on DELETE /api/v1/breaker`,
                  resetsInSeconds: Math.ceil(breaker.resetInMs / 1000),
                }
              : { tripped: false, segmentsThisHour: breaker.used, limitPerHour: breaker.limit },
          }
        : {}),
    };
    return reply.code(code).send(body);
  });
}
