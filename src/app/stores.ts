// Everything kept in Redis (and on disk), opened once: the stores the flows work on, the delivery
// engine on its queues, the usage counters of the limits, and (REDIS_MIN_REPLICAS) the confirmation that
// acknowledged writes reached the replicas. One connection, to REDIS_URL or to the primary the Sentinels
// name (REDIS_SENTINELS), carries every store's commands.
import { hostname } from "node:os";
import { createDiskMediaStore } from "../adapters/media/disk-store.js";
import { createRedisAccountStore } from "../adapters/redis/account-store.js";
import { createRedisLeases } from "../adapters/redis/leases.js";
import { openRedis, redisTarget } from "../adapters/redis/client.js";
import { createRedisLinkStore } from "../adapters/redis/link-store.js";
import { createRedisMediaTokens } from "../adapters/redis/media-tokens.js";
import { createRedisMessageStore } from "../adapters/redis/message-store.js";
import { createRedisIntroductionStore, createRedisOptOutStore } from "../adapters/redis/opt-out-store.js";
import { createReplicaConfirm } from "../adapters/redis/replicas.js";
import { createRedisDelivery } from "../adapters/redis/delivery.js";
import { createReadCache } from "../adapters/redis/read-cache.js";
import { createRedisUsageCounter } from "../adapters/redis/usage-counter.js";
import { createRedisWebhookStore } from "../adapters/redis/webhook-store.js";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { createSecretBox } from "../secrets.js";

export async function openStores(config: Config, log: Logger) {
  const redisLog = log.child({ sub: "redis" });
  const connection = await openRedis(
    redisTarget(config),
    {
      error: (err) => redisLog.warn({ err: err.message }, "redis error"),
      primary: (node) => redisLog.info({ primary: `${node.host}:${node.port}` }, "Redis primary (named by the Sentinels)"),
    },
    { commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS },
  );
  const redis = connection.redis;
  const lookups = createReadCache(config.LOOKUP_CACHE_MS);
  // Without SECRETS_KEY the gateway runs, but refuses (503, naming SECRETS_KEY) to store secrets.
  const secrets = createSecretBox(config.SECRETS_KEY);
  const instance = config.INSTANCE_ID ?? hostname();
  return {
    redis,
    /** INSTANCE_ID: this instance's name among several (consumer name, lease holder). */
    instance,
    /** The leases and live-instance list of a deployment of several instances. */
    leases: createRedisLeases(redis),
    connection,
    /** Absent with REDIS_MIN_REPLICAS=0: nothing is waited for. */
    replicas: config.REDIS_MIN_REPLICAS > 0 ? createReplicaConfirm(connection, { minReplicas: config.REDIS_MIN_REPLICAS, waitMs: config.REDIS_REPLICA_WAIT_MS, log: redisLog }) : undefined,
    links: createRedisLinkStore(redis, lookups),
    messages: createRedisMessageStore(redis, { retentionS: config.MESSAGE_RETENTION }),
    webhooks: createRedisWebhookStore(redis, secrets, Date.now, lookups),
    // Users' own provider accounts (REGISTRATION=byo); kept (and forgotten with the user) in every mode.
    accounts: createRedisAccountStore(redis, secrets),
    // The opt-out ledger and the contacts each user was introduced to.
    optOuts: createRedisOptOutStore(redis),
    introductions: createRedisIntroductionStore(redis),
    // Re-hosted media: files in MEDIA_DIR, tokens (and the list of each user's) in Redis.
    mediaFiles: createDiskMediaStore(config.MEDIA_DIR),
    mediaTokens: createRedisMediaTokens(redis),
    delivery: createRedisDelivery(redis, log.child({ sub: "delivery" }), {
      partitions: config.PIPELINE_PARTITIONS,
      dedupeTtlS: config.DEDUPE_TTL,
      consumerName: instance,
      toXmppDeadlineMs: config.XMPP_DELIVERY_DEADLINE_MS,
      maxBounces: config.XMPP_MAX_BOUNCES,
      bounceRetryMs: config.XMPP_BOUNCE_RETRY_MS,
      bounceRetryMaxMs: config.XMPP_BOUNCE_RETRY_MAX_MS,
      claimIdleMs: config.PIPELINE_CLAIM_IDLE_MS,
      holdToXmpp: config.TEST_HOLD_TO_XMPP,
      deadLetterRetentionS: config.DEAD_LETTER_RETENTION,
    }),
    /** A usage counter shared by every instance (the limits). */
    counter: (name: string, limit: number, windowS: number, staysTripped = false) => createRedisUsageCounter(redis, { name, limit, windowS, staysTripped }),
  };
}

export type Stores = Awaited<ReturnType<typeof openStores>>;
