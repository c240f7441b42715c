// Composition root: builds every adapter from the config and wires them to the core.
import { hostname } from "node:os";
import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { createJournal } from "./adapters/journal/journal.js";
import { createDiskMediaStore } from "./adapters/media/disk-store.js";
import { createMediaFetcher } from "./adapters/media/fetcher.js";
import { connectRedis, isRedisUnavailable, pingWithin, type Redis } from "./adapters/redis/client.js";
import { createRedisAccountStore } from "./adapters/redis/account-store.js";
import { createRedisLinkStore } from "./adapters/redis/link-store.js";
import { createReadCache } from "./adapters/redis/read-cache.js";
import { createRedisMediaTokens } from "./adapters/redis/media-tokens.js";
import { createRedisMessageStore } from "./adapters/redis/message-store.js";
import { createRedisIntroductionStore, createRedisOptOutStore } from "./adapters/redis/opt-out-store.js";
import { createRedisPipeline } from "./adapters/redis/pipeline.js";
import { createRedisWebhookStore } from "./adapters/redis/webhook-store.js";
import { createCommands } from "./core/commands.js";
import { createForgetUser } from "./core/forget-user.js";
import { createRegistration } from "./core/registration.js";
import { createWebhookSender } from "./adapters/webhook/sender.js";
import { isLoopbackHost, type Config } from "./config.js";
import { GatewayError } from "./errors.js";
import { createContactEvents } from "./core/contact-events.js";
import { createInbound } from "./core/inbound.js";
import { createOnNet } from "./core/on-net.js";
import { createMediaPreparer, withMediaPreparation } from "./core/media.js";
import { createSpool, parseSpooledSms } from "./core/spool.js";
import { createOutbound, type Outbound } from "./core/outbound.js";
import { createAccessPolicy } from "./core/access.js";
import { createSendLimits } from "./core/limits.js";
import { createRedisUsageCounter } from "./adapters/redis/usage-counter.js";
import { createMetrics } from "./metrics.js";
import { instrumentInbound, instrumentOutbound, instrumentProvider, instrumentWebhookSender, instrumentXmppSink } from "./instrument.js";
import { buildHttp } from "./http/server.js";
import type { Logger } from "./logger.js";
import { createSecretBox } from "./secrets.js";
import { createProviderKit } from "./app/provider.js";
import { createComponent } from "./xmpp/component.js";
import { createConnection } from "./xmpp/connection.js";

export interface Gateway {
  http: FastifyInstance;
  redis: Redis;
  config: Config;
  /** Starts the XMPP link, the pipeline consumers and (unless listen is false) the HTTP listener. */
  start(opts?: { listen?: boolean }): Promise<void>;
  stop(): Promise<void>;
  /** Base URL of the HTTP listener once started. */
  url(): string;
  xmppState(): ReturnType<ReturnType<typeof createConnection>["state"]>;
  /**
   * The component's xmpp.js entity. Tests and the fuzz run (fuzz/fuzz.ts) hand it parsed stanzas with
   * `emit("element", el)`, exactly as if the XMPP server had sent them; answers go out to the server.
   */
  xmppEntity: ReturnType<typeof createConnection>["xmpp"];
  /** Deletes expired re-hosted media now (it also runs periodically); returns how many. */
  sweepMedia(): Promise<number>;
}

/** From package.json, found from src/ (tsx) or dist/src/ (built). */
export const VERSION: string = (() => {
  for (const rel of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "switchboard" && pkg.version) return pkg.version;
    } catch {
      // try the next level
    }
  }
  return "0.0.0";
})();

export async function createGateway(config: Config, log: Logger, hooks: { onFatal(message: string): void }): Promise<Gateway> {
  const redis = await connectRedis(config.REDIS_URL, (err) => log.warn({ err: err.message }, "redis error"), { commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS });
  const lookups = createReadCache(config.LOOKUP_CACHE_MS);
  const links = createRedisLinkStore(redis, lookups);
  const messages = createRedisMessageStore(redis, { retentionS: config.MESSAGE_RETENTION });
  // Without SECRETS_KEY the gateway runs, but refuses (503, naming SECRETS_KEY) to store secrets.
  const secrets = createSecretBox(config.SECRETS_KEY);
  const webhooks = createRedisWebhookStore(redis, secrets, Date.now, lookups);
  // Users' own provider accounts (REGISTRATION=byo); kept (and forgotten with the user) in every mode.
  const accountStore = createRedisAccountStore(redis, secrets);
  const webhookSender = createWebhookSender({ allowPrivate: config.WEBHOOK_ALLOW_PRIVATE, timeoutMs: config.WEBHOOK_TIMEOUT_MS });
  const pipeline = createRedisPipeline(redis, log.child({ sub: "pipeline" }), {
    partitions: config.PIPELINE_PARTITIONS,
    dedupeTtlS: config.DEDUPE_TTL,
    consumerName: config.INSTANCE_ID ?? hostname(),
    toXmppDeadlineMs: config.XMPP_DELIVERY_DEADLINE_MS,
    maxBounces: config.XMPP_MAX_BOUNCES,
    bounceRetryMs: config.XMPP_BOUNCE_RETRY_MS,
    bounceRetryMaxMs: config.XMPP_BOUNCE_RETRY_MAX_MS,
    claimIdleMs: config.PIPELINE_CLAIM_IDLE_MS,
    holdToXmpp: config.TEST_HOLD_TO_XMPP,
    deadLetterRetentionS: config.DEAD_LETTER_RETENTION,
  });
  // The opt-out ledger and the contacts each user was introduced to (issue 5, items 3–5).
  const optOuts = createRedisOptOutStore(redis);
  const introductions = createRedisIntroductionStore(redis);
  const inbound = createInbound({ domain: config.XMPP_DOMAIN, links, messages, pipeline, log: log.child({ sub: "inbound" }), optOuts, introductions });
  const onNet = createOnNet({
    domain: config.XMPP_DOMAIN,
    pipeline,
    contacts: createContactEvents({ domain: config.XMPP_DOMAIN, pipeline, optOuts, introductions, log: log.child({ sub: "on-net" }) }),
    log: log.child({ sub: "on-net" }),
  });
  // Inbound SMS that Redis cannot take in time wait on local disk and are replayed when it is back.
  const journalLog = log.child({ sub: "journal" });
  const journal = createJournal({ dir: config.JOURNAL_DIR, parse: parseSpooledSms, onSkipped: (file, line, reason) => journalLog.warn({ file, line, reason }, "journal line skipped") });
  await journal.init();
  const spool = createSpool({ inbound, journal, isStoreDown: isRedisUnavailable, deadlineMs: config.REDIS_COMMAND_TIMEOUT_MS, replayIntervalMs: config.JOURNAL_REPLAY_INTERVAL_MS, log: journalLog });
  redis.on("ready", () => void spool.replay());
  if (!redis.isReady) log.error({}, "Redis is unreachable at start-up: inbound SMS go to the journal until it answers");

  const byo = config.REGISTRATION === "byo";
  if (byo && !config.SECRETS_KEY) log.warn({}, "REGISTRATION=byo without SECRETS_KEY: users cannot register until SECRETS_KEY is set (the gateway refuses to store their credentials unencrypted)");
  if (config.SMS_PROVIDER === "sandbox") {
    log.warn("SMS_PROVIDER=sandbox: no SMS leaves this gateway; outgoing texts are listed at GET /sandbox/messages (set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to send real SMS)");
    if (!isLoopbackHost(config.HTTP_HOST)) log.warn({ host: config.HTTP_HOST }, "SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN=true: the sandbox is reachable from other machines (whoever holds ADMIN_TOKEN can fake incoming SMS through it, and no text leaves it); use it on a trusted network only");
  }
  // The SMS provider and everything provider-specific: sending, webhooks, media credentials, users' own accounts.
  const kit = createProviderKit(config, { accounts: accountStore, inbound, log });
  // Re-hosted media: files in MEDIA_DIR, tokens (and the list of each user's) in Redis.
  const mediaFiles = createDiskMediaStore(config.MEDIA_DIR);
  const mediaTokens = createRedisMediaTokens(redis);
  // What unlinking or unregistering deletes, on every path (admin API, XEP-0077, commands). Stored
  // credentials go even when REGISTRATION is no longer byo.
  const forgetUser = createForgetUser({
    links,
    accounts: accountStore,
    pipeline,
    introductions,
    media: { index: mediaTokens, files: mediaFiles },
    log: log.child({ sub: "forget" }),
  });
  const registration = createRegistration({
    mode: config.REGISTRATION,
    links,
    ...(kit.registration ? { accounts: accountStore, ...kit.registration } : { smsUrl: "" }),
    defaultRegion: config.DEFAULT_REGION,
    log: log.child({ sub: "registration" }),
    forget: forgetUser,
  });
  const commands = createCommands({ domain: config.XMPP_DOMAIN, registration });

  // Who may use the gateway, and what they may spend (issue 6). The counters live in Redis, so
  // several instances share them.
  const access = createAccessPolicy(config.ALLOWED_DOMAINS);
  const limitsLog = log.child({ sub: "limits" });
  const counter = (name: string, limit: number, windowS: number, staysTripped = false) => createRedisUsageCounter(redis, { name, limit, windowS, staysTripped });
  const limits = createSendLimits({
    settings: { allowedCountries: config.ALLOWED_COUNTRIES, blockedNumberTypes: config.BLOCKED_NUMBER_TYPES, shortCodes: config.SHORT_CODES, defaultRegion: config.DEFAULT_REGION },
    userRate: counter("user-rate", config.USER_MESSAGES_PER_MINUTE, 60),
    userDaily: counter("user-daily-segments", config.USER_SEGMENTS_PER_DAY, 86_400),
    breaker: counter("breaker", config.BREAKER_SEGMENTS_PER_HOUR, 3600, true),
    events: {
      refused: (limit) => metrics.limitRefused(limit),
      breakerTripped: ({ limit, resetInMs }) => {
        metrics.breakerTripped();
        limitsLog.error({ limit, resumesInS: Math.ceil(resetInMs / 1000) }, `breaker tripped: more than ${limit} SMS segments this hour; all sending is stopped until the hour ends or DELETE /api/v1/breaker`);
      },
    },
  });
  // Gauges are read at scrape time; `connection` is created further down (the closure runs later).
  const metrics = createMetrics({
    breaker: () => limits.breakerStatus(),
    queues: () => pipeline.stats(),
    journal: () => spool.journalStatus(),
    xmpp: () => connection.state(),
  });

  const outbound = createOutbound({
    access,
    limits,
    links,
    messages,
    pipeline,
    provider: instrumentProvider(kit.provider, metrics),
    ...(byo ? { accountOf: (jid: string) => accountStore.accountOf(jid) } : {}),
    ...(config.SMS_PROVIDER === "twilio" && config.TWILIO_ACCOUNT_SID ? { mainAccount: config.TWILIO_ACCOUNT_SID } : {}),
    notLinkedHint: byo ? "register your own Twilio number with the gateway's Register command (write \"register\" to the gateway for how)." : "ask its operator to link one.",
    log: log.child({ sub: "outbound" }),
    retry: { baseMs: config.OUTBOUND_RETRY_BASE_MS, deadlineMs: config.OUTBOUND_DEADLINE_MS },
    // A message found at the provider by a lookup takes the status path: receipt or error as usual.
    applyStatus: (u) => inbound.applyStatus(u),
    webhooks: { store: webhooks, sender: instrumentWebhookSender(webhookSender, metrics), deadlineMs: config.WEBHOOK_DEADLINE_MS },
    domain: config.XMPP_DOMAIN,
    optOuts,
    maxSegments: config.MAX_SEGMENTS,
    onNet,
  });

  const connection = createConnection({
    service: config.XMPP_SERVICE,
    domain: config.XMPP_DOMAIN,
    secret: config.XMPP_SECRET,
    reconnect: { minMs: config.XMPP_RECONNECT_MIN_MS, maxMs: config.XMPP_RECONNECT_MAX_MS },
    handshakeTimeoutMs: config.XMPP_HANDSHAKE_TIMEOUT_MS,
    maxStanzaBytes: config.XMPP_MAX_STANZA_BYTES,
    log: log.child({ sub: "xmpp" }),
    onFatal: hooks.onFatal,
  });
  // Deliveries waiting for the server resume as soon as it is back, not at the end of their backoff.
  connection.onOnline(() => pipeline.wake());
  // Inbound MMS media are fetched and re-hosted just before delivery (core/media.ts).
  const mediaLog = log.child({ sub: "media" });
  const mediaFetcher = createMediaFetcher({
    access: kit.media,
    timeoutMs: config.MEDIA_FETCH_TIMEOUT_MS,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
  });
  const mediaPreparer = createMediaPreparer({
    fetcher: mediaFetcher,
    files: mediaFiles,
    tokens: mediaTokens,
    publicUrl: config.PUBLIC_URL,
    maxBytes: config.MEDIA_MAX_BYTES,
    retentionS: config.MEDIA_RETENTION,
    log: mediaLog,
  });
  const sweepMedia = () =>
    mediaFiles.sweep().then(
      (n) => (n > 0 && mediaLog.info({ deleted: n }, "expired media deleted"), n),
      (err: unknown) => (mediaLog.warn({ err }, "media sweep failed"), 0),
    );
  let mediaSweeper: NodeJS.Timeout | undefined;

  const measuredOutbound = instrumentOutbound(outbound, metrics);
  const xmppOut = createComponent({ connection, domain: config.XMPP_DOMAIN, defaultRegion: config.DEFAULT_REGION, outbound: explainStoreDown(measuredOutbound), webhooks, log: log.child({ sub: "xmpp" }), version: VERSION, commands: { list: commands, registration }, access });

  const http = await buildHttp({
    publicUrl: config.PUBLIC_URL,
    version: VERSION,
    adminToken: config.ADMIN_TOKEN,
    bodyLimit: config.HTTP_BODY_LIMIT,
    log,
    links,
    forgetUser,
    access,
    limits,
    metrics,
    adminAuthFailures: counter("admin-auth-failures", config.ADMIN_AUTH_FAILURES_PER_MINUTE, 60),
    webhookInRate: counter("webhook-in", config.WEBHOOK_IN_PER_MINUTE, 60),
    trustProxy: config.TRUST_PROXY,
    explainError: (err) => storeDown(err, "The gateway's database (Redis) is unavailable, so nothing was stored or sent. Try again in a minute."),
    messages,
    webhooks,
    domain: config.XMPP_DOMAIN,
    webhookInMaxBacklog: config.WEBHOOK_IN_MAX_BACKLOG,
    checkWebhookUrl: (url) => webhookSender.checkUrl(url),
    inbound: instrumentInbound(spool, metrics), // the webhooks accept through the spool: Redis, or the journal while Redis is away
    outbound: measuredOutbound, // POST /api/v1/test-messages (switchboard send)
    providerWebhooks: kit.webhooks,
    ...(kit.sandbox ? { sandbox: kit.sandbox } : {}),
    pipeline,
    media: mediaFiles,
    health: {
      breaker: () => limits.breakerStatus(),
      provider: kit.provider.name,
      xmpp: () => connection.state(),
      journal: () => spool.journalStatus(),
      // A silent Redis answers nothing: the probe is bounded on its own.
      redisOk: () => pingWithin(redis, 1000),
    },
  });

  let listening = "";
  return {
    http,
    redis,
    config,
    url: () => listening,
    xmppState: () => connection.state(),
    xmppEntity: connection.xmpp,
    sweepMedia,
    async start(opts = {}) {
      pipeline.consume({
        toXmpp: withMediaPreparation(instrumentXmppSink(xmppOut, metrics), mediaPreparer),
        outbound: (job, meta) => outbound.process(job, meta),
        onDeadLetter: async (dl) => {
          metrics.deadLettered(dl.queue);
          // The XMPP user who sent a message that will not go out hears about it.
          if (dl.queue === "outbound") await outbound.reportError(dl.item.id, "cancel", "undefined-condition", `This message was not delivered: ${dl.reason}`);
        },
      });
      connection.start();
      spool.start(); // replays what a crash or an outage left in the journal
      void sweepMedia();
      mediaSweeper = setInterval(() => void sweepMedia(), Math.min(config.MEDIA_RETENTION, 3600) * 1000);
      mediaSweeper.unref();
      if (opts.listen !== false) {
        listening = await http.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT });
        log.info({ url: listening, publicUrl: config.PUBLIC_URL, domain: config.XMPP_DOMAIN, provider: kit.provider.name }, "switchboard started");
      }
    },
    async stop() {
      // Intake first, then the workers, then the links they use.
      await http.close();
      await spool.stop();
      await pipeline.stop();
      await connection.stop();
      await kit.close();
      clearInterval(mediaSweeper);
      await mediaFetcher.close();
      await webhookSender.close();
      redis.destroy();
    },
  };
}

/**
 * A message that cannot be stored because Redis is away is refused with "try again" (resource-constraint,
 * type wait) instead of "internal error": nothing is wrong with it, and nothing was sent.
 */
function explainStoreDown(outbound: Outbound): Outbound {
  return {
    ...outbound,
    async accept(msg) {
      try {
        return await outbound.accept(msg);
      } catch (err) {
        throw storeDown(err, "The gateway cannot store messages right now (its database is unavailable), so this one was not sent. Try again in a minute.") ?? err;
      }
    },
  };
}

/** A failure because Redis is unreachable, as something to wait out and retry (a Redis restart takes seconds); undefined for any other error. */
function storeDown(err: unknown, userText: string): GatewayError | undefined {
  return isRedisUnavailable(err) ? new GatewayError("resource_constraint", userText, { cause: err, retryAfterMs: 30_000 }) : undefined;
}
