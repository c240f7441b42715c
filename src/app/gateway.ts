// The composition root: the stores, the SMS provider, the core's flows, and the two faces (the XMPP
// component and the HTTP surface), built once and started and stopped in order.
import type { FastifyInstance } from "fastify";
import { createJournal } from "../adapters/journal/journal.js";
import { isRedisUnavailable, pingWithin, type Redis } from "../adapters/redis/client.js";
import { isLoopbackHost, type Config } from "../config.js";
import { createInbound } from "../core/flows/sms-in.js";
import { withMediaPreparation } from "../core/flows/media.js";
import { createSpool, parseSpooledSms } from "../core/flows/spool.js";
import { buildHttp } from "../http/server.js";
import { instrumentInbound, instrumentOutbound, instrumentXmppSink } from "../instrument.js";
import type { Logger } from "../logger.js";
import { createMetrics } from "../metrics.js";
import { createComponent } from "../xmpp/component.js";
import { createConnection, type Connection } from "../xmpp/connection.js";
import { LINK_LEASE, type ClusterMember } from "../core/cluster/cluster-member.js";
import { joinCluster } from "./cluster.js";
import { createFlows } from "./flows.js";
import { createProviderKit } from "./provider.js";
import { createReconciler } from "./reconcile.js";
import { explainStoreDown, REPLICAS_HTTP_TEXT, storeDown } from "./store-down.js";
import { openStores } from "./stores.js";
import { VERSION } from "../version.js";

export { VERSION };

export interface Gateway {
  http: FastifyInstance;
  redis: Redis;
  config: Config;
  /** Starts the XMPP link, the delivery engine's consumers and (unless listen is false) the HTTP listener. */
  start(opts?: { listen?: boolean }): Promise<void>;
  stop(): Promise<void>;
  /** Base URL of the HTTP listener once started. */
  url(): string;
  xmppState(): ReturnType<Connection["state"]>;
  /** This instance's leases: the XMPP link and its outbound partitions. */
  clusterStatus(): ReturnType<ClusterMember["status"]>;
  /**
   * The component's xmpp.js entity. Tests and the fuzz run (fuzz/fuzz.ts) hand it parsed stanzas with
   * `emit("element", el)`, exactly as if the XMPP server had sent them; answers go out to the server.
   */
  xmppEntity: Connection["xmpp"];
  /** Deletes expired re-hosted media now (it also runs periodically); returns how many. */
  sweepMedia(): Promise<number>;
}

export async function createGateway(config: Config, log: Logger, hooks: { onFatal(message: string): void }): Promise<Gateway> {
  warnAboutSettings(config, log);
  const stores = await openStores(config, log);
  const { redis, delivery } = stores;
  const domain = config.XMPP_DOMAIN;

  // SMS → XMPP and provider status → receipts. Inbound SMS that Redis cannot take in time wait on local
  // disk in the journal and are replayed when it is back.
  const inbound = createInbound({
    domain,
    links: stores.links,
    messages: stores.messages,
    delivery: delivery,
    optOuts: stores.optOuts,
    introductions: stores.introductions,
    ...(stores.replicas ? { durability: stores.replicas } : {}),
    log: log.child({ sub: "inbound" }),
  });
  const journalLog = log.child({ sub: "journal" });
  const journal = createJournal({ dir: config.JOURNAL_DIR, parse: parseSpooledSms, onSkipped: (file, line, reason) => journalLog.warn({ file, line, reason }, "journal line skipped") });
  await journal.init();
  const spool = createSpool({ inbound, journal, isStoreDown: isRedisUnavailable, deadlineMs: config.REDIS_COMMAND_TIMEOUT_MS, replayIntervalMs: config.JOURNAL_REPLAY_INTERVAL_MS, log: journalLog });
  stores.connection.onReady(() => void spool.replay());
  if (!redis.isReady) log.error({}, "Redis is unreachable at start-up: inbound SMS go to the journal until it answers");

  // The SMS provider and everything provider-specific: sending, webhooks, media credentials, users' own accounts.
  const kit = createProviderKit(config, { accounts: stores.accounts, inbound, log });
  // Gauges are read at scrape time: `flows` and `connection` exist by then.
  const metrics = createMetrics({
    breaker: () => flows.limits.breakerStatus(),
    queues: () => delivery.stats(),
    journal: () => spool.journalStatus(),
    xmpp: () => connection.state(),
    cluster: () => cluster.status(),
  });
  const flows = createFlows(config, { stores, kit, inbound, metrics, log });
  const outbound = instrumentOutbound(flows.outbound, metrics);
  // Texts and statuses the provider has that never reached the gateway (src/app/reconcile.ts).
  const reconciler = createReconciler(config, { redis, stores, kit, inbound, metrics, log });

  // The XMPP face.
  const connection = createConnection({
    service: config.XMPP_SERVICE,
    domain,
    secret: config.XMPP_SECRET,
    reconnect: { minMs: config.XMPP_RECONNECT_MIN_MS, maxMs: config.XMPP_RECONNECT_MAX_MS },
    handshakeTimeoutMs: config.XMPP_HANDSHAKE_TIMEOUT_MS,
    maxStanzaBytes: config.XMPP_MAX_STANZA_BYTES,
    log: log.child({ sub: "xmpp" }),
    onFatal: hooks.onFatal,
  });
  // Deliveries waiting for the server resume as soon as it is back, not at the end of their backoff.
  connection.onOnline(() => delivery.wake());
  // Several instances: the one holding the link lease connects and delivers toward XMPP; outbound
  // partitions are shared out. Alone, this instance simply holds every lease.
  const cluster = joinCluster({ leases: stores.leases, delivery, connection, instance: stores.instance, ttlMs: config.LEASE_TTL_MS, metrics, log, onFatal: hooks.onFatal });
  const component = createComponent({
    connection,
    domain,
    defaultRegion: config.DEFAULT_REGION,
    outbound: explainStoreDown(outbound),
    webhooks: stores.webhooks,
    log: log.child({ sub: "xmpp" }),
    version: VERSION,
    commands: { list: flows.commands, registration: flows.registration },
    access: flows.access,
  });

  // The HTTP face.
  const http = await buildHttp({
    publicUrl: config.PUBLIC_URL,
    version: VERSION,
    adminToken: config.ADMIN_TOKEN,
    bodyLimit: config.HTTP_BODY_LIMIT,
    trustProxy: config.TRUST_PROXY,
    log,
    domain,
    links: stores.links,
    messages: stores.messages,
    webhooks: stores.webhooks,
    delivery: delivery,
    media: stores.mediaFiles,
    forgetUser: flows.forgetUser,
    access: flows.access,
    limits: flows.limits,
    metrics,
    adminAuthFailures: stores.counter("admin-auth-failures", config.ADMIN_AUTH_FAILURES_PER_MINUTE, 60),
    explainError: (err) => storeDown(err, "The gateway's database (Redis) is unavailable, so nothing was stored or sent. Try again in a minute.", REPLICAS_HTTP_TEXT),
    checkWebhookUrl: flows.checkWebhookUrl,
    webhookIn: flows.webhookIn,
    inbound: instrumentInbound(spool, metrics), // the webhooks accept through the spool: Redis, or the journal while Redis is away
    outbound, // POST /api/v1/test-messages (switchboard send)
    providerWebhooks: kit.webhooks,
    ...(kit.sandbox ? { sandbox: kit.sandbox } : {}),
    reconcile: reconciler,
    health: {
      breaker: () => flows.limits.breakerStatus(),
      provider: kit.provider.name,
      xmpp: () => connection.state(),
      cluster: () => cluster.status(),
      linkHolder: () => stores.leases.holderOf(LINK_LEASE),
      journal: () => spool.journalStatus(),
      redisOk: () => pingWithin(redis, 1000),
      ...(stores.replicas ? { replicasOk: stores.replicas.ok } : {}),
      redisDetails: () => {
        const primary = stores.connection.primary();
        const replicas = stores.replicas?.status();
        return { mode: stores.connection.mode, ...(primary ? { primary: `${primary.host}:${primary.port}` } : {}), ...(replicas ? { replicas } : {}) };
      },
    },
  });

  let listening = "";
  let mediaSweeper: NodeJS.Timeout | undefined;
  return {
    http,
    redis,
    config,
    url: () => listening,
    xmppState: () => connection.state(),
    clusterStatus: () => cluster.status(),
    xmppEntity: connection.xmpp,
    sweepMedia: flows.sweepMedia,
    async start(opts = {}) {
      delivery.consume(
        {
          toXmpp: withMediaPreparation(instrumentXmppSink(component, metrics), flows.media),
          outbound: (job, meta) => flows.outbound.process(job, meta),
          onDeadLetter: async (dl) => {
            metrics.deadLettered(dl.queue);
            // The XMPP user who sent a message that will not go out hears about it.
            if (dl.queue === "outbound") await flows.outbound.reportError(dl.item.id, "cancel", "undefined-condition", `This message was not delivered: ${dl.reason}`);
          },
        },
        { manual: true },
      );
      // The link and the partitions start as their leases are taken (at once when this instance is alone).
      cluster.start();
      spool.start(); // replays what a crash or an outage left in the journal
      reconciler.start(); // and what reached the provider while no instance could take it
      void flows.sweepMedia();
      mediaSweeper = setInterval(() => void flows.sweepMedia(), Math.min(config.MEDIA_RETENTION, 3600) * 1000);
      mediaSweeper.unref();
      if (opts.listen !== false) {
        listening = await http.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT });
        log.info({ url: listening, publicUrl: config.PUBLIC_URL, domain, provider: kit.provider.name }, "switchboard started");
      }
    },
    async stop() {
      // Intake first, then the workers, then the links they use.
      // A reconciliation in progress (an operator's request included) ends first, at its next message.
      await reconciler.stop();
      await http.close();
      await spool.stop();
      // The leases are given back once their work is finished: a standby takes the link at once.
      await cluster.stop();
      // Messages from XMPP users the server handed over before the link closed are taken in first.
      await component.drain();
      await delivery.stop();
      await connection.stop();
      await kit.close();
      clearInterval(mediaSweeper);
      await flows.close();
      stores.replicas?.stop();
      await stores.connection.close();
    },
  };
}

/** Settings that work but deserve a line in the log at start. */
function warnAboutSettings(config: Config, log: Logger): void {
  if (config.REGISTRATION === "byo" && !config.SECRETS_KEY)
    log.warn({}, "REGISTRATION=byo without SECRETS_KEY: users cannot register until SECRETS_KEY is set (the gateway refuses to store their credentials unencrypted)");
  if (config.SMS_PROVIDER !== "sandbox") return;
  log.warn("SMS_PROVIDER=sandbox: no SMS leaves this gateway; outgoing texts are listed at GET /sandbox/messages (set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to send real SMS)");
  if (!isLoopbackHost(config.HTTP_HOST))
    log.warn(
      { host: config.HTTP_HOST },
      "SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN=true: the sandbox is reachable from other machines (whoever holds ADMIN_TOKEN can fake incoming SMS through it, and no text leaves it); use it on a trusted network only",
    );
}
