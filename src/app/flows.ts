// The core's flows (src/core), built once over the stores and the provider: who may use the gateway and
// what they may spend, XMPP → SMS or webhook, message in, registration and commands, forgetting a
// user, and re-hosting inbound media.
import { createMediaFetcher } from "../adapters/media/fetcher.js";
import { createWebhookSender } from "../adapters/webhook/sender.js";
import type { Config } from "../config.js";
import { createAccessPolicy } from "../core/policy/access.js";
import { createCommands } from "../core/flows/commands.js";
import { createContactEvents } from "../core/flows/contact-events.js";
import { createForgetUser } from "../core/flows/forget-user.js";
import type { Inbound } from "../core/flows/sms-in.js";
import { createSendLimits } from "../core/policy/limits.js";
import { createMediaPreparer } from "../core/flows/media.js";
import { createOnNet } from "../core/flows/on-net.js";
import { createOutbound } from "../core/flows/xmpp-out.js";
import { createRegistration } from "../core/flows/registration.js";
import { createWebhookIn } from "../core/flows/webhook-in.js";
import { instrumentProvider, instrumentWebhookSender } from "../instrument.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { ProviderKit } from "./provider.js";
import type { Stores } from "./stores.js";

export function createFlows(config: Config, d: { stores: Stores; kit: ProviderKit; inbound: Inbound; metrics: Metrics; log: Logger }) {
  const { stores, kit, metrics, log } = d;
  const domain = config.XMPP_DOMAIN;
  const byo = config.REGISTRATION === "byo";

  // Who may use the gateway, and what they may spend. The counters live in Redis, so every instance shares them.
  const access = createAccessPolicy(config.ALLOWED_DOMAINS);
  const limitsLog = log.child({ sub: "limits" });
  const limits = createSendLimits({
    settings: { allowedCountries: config.ALLOWED_COUNTRIES, blockedNumberTypes: config.BLOCKED_NUMBER_TYPES, shortCodes: config.SHORT_CODES, defaultRegion: config.DEFAULT_REGION },
    userRate: stores.counter("user-rate", config.USER_MESSAGES_PER_MINUTE, 60),
    userDaily: stores.counter("user-daily-segments", config.USER_SEGMENTS_PER_DAY, 86_400),
    breaker: stores.counter("breaker", config.BREAKER_SEGMENTS_PER_HOUR, 3600, true),
    events: {
      refused: (limit) => metrics.limitRefused(limit),
      breakerTripped: ({ limit, resetInMs }) => {
        metrics.breakerTripped();
        limitsLog.error(
          { limit, resumesInS: Math.ceil(resetInMs / 1000) },
          `breaker tripped: more than ${limit} SMS segments this hour; all sending is stopped until the hour ends or DELETE /api/v1/breaker`,
        );
      },
    },
  });

  const webhookSender = createWebhookSender({ allowPrivate: config.WEBHOOK_ALLOW_PRIVATE, timeoutMs: config.WEBHOOK_TIMEOUT_MS });
  const onNet = createOnNet({
    domain,
    delivery: stores.delivery,
    contacts: createContactEvents({ domain, delivery: stores.delivery, optOuts: stores.optOuts, introductions: stores.introductions, log: log.child({ sub: "on-net" }) }),
    log: log.child({ sub: "on-net" }),
  });
  const outbound = createOutbound({
    access,
    limits,
    links: stores.links,
    messages: stores.messages,
    delivery: stores.delivery,
    provider: instrumentProvider(kit.provider, metrics),
    ...(byo ? { accountOf: (jid: string) => stores.accounts.accountOf(jid) } : {}),
    ...(config.SMS_PROVIDER === "twilio" && config.TWILIO_ACCOUNT_SID ? { mainAccount: config.TWILIO_ACCOUNT_SID } : {}),
    notLinkedHint: byo ? 'register your own Twilio number with the gateway\'s Register command (write "register" to the gateway for how).' : "ask its operator to link one.",
    log: log.child({ sub: "outbound" }),
    retry: { baseMs: config.OUTBOUND_RETRY_BASE_MS, deadlineMs: config.OUTBOUND_DEADLINE_MS },
    // The create's answer and a message found at the provider by a lookup take the status path: receipt or error as usual.
    applyStatus: (u) => d.inbound.applyStatus(u),
    webhooks: { store: stores.webhooks, sender: instrumentWebhookSender(webhookSender, metrics), deadlineMs: config.WEBHOOK_DEADLINE_MS },
    domain,
    optOuts: stores.optOuts,
    maxSegments: config.MAX_SEGMENTS,
    onNet,
    ...(stores.replicas ? { durability: stores.replicas } : {}),
  });

  const webhookIn = createWebhookIn({
    domain,
    webhooks: stores.webhooks,
    delivery: stores.delivery,
    maxBacklog: config.WEBHOOK_IN_MAX_BACKLOG,
    access,
    rate: stores.counter("webhook-in", config.WEBHOOK_IN_PER_MINUTE, 60),
    events: {
      rateLimited: () => metrics.limitRefused("webhook_in_rate"),
      accepted: (fresh) => metrics.message("in", "webhook", fresh ? "accepted" : "duplicate"),
    },
    ...(stores.replicas ? { durability: stores.replicas } : {}),
  });

  // What unlinking or unregistering deletes, on every path (admin API, XEP-0077, commands). Stored
  // credentials go even when REGISTRATION is no longer byo.
  const forgetUser = createForgetUser({
    links: stores.links,
    accounts: stores.accounts,
    delivery: stores.delivery,
    introductions: stores.introductions,
    media: { index: stores.mediaTokens, files: stores.mediaFiles },
    log: log.child({ sub: "forget" }),
  });
  const registration = createRegistration({
    mode: config.REGISTRATION,
    links: stores.links,
    ...(kit.registration ? { accounts: stores.accounts, ...kit.registration } : { smsUrl: "" }),
    defaultRegion: config.DEFAULT_REGION,
    log: log.child({ sub: "registration" }),
    forget: forgetUser,
  });
  const commands = createCommands({ domain, registration });

  // Inbound MMS media are fetched and re-hosted just before delivery (core/flows/media.ts).
  const mediaLog = log.child({ sub: "media" });
  const mediaFetcher = createMediaFetcher({ access: kit.media, timeoutMs: config.MEDIA_FETCH_TIMEOUT_MS, allowPrivate: config.WEBHOOK_ALLOW_PRIVATE });
  const media = createMediaPreparer({
    fetcher: mediaFetcher,
    files: stores.mediaFiles,
    tokens: stores.mediaTokens,
    publicUrl: config.PUBLIC_URL,
    maxBytes: config.MEDIA_MAX_BYTES,
    retentionS: config.MEDIA_RETENTION,
    log: mediaLog,
  });
  const sweepMedia = () =>
    stores.mediaFiles.sweep().then(
      (n) => (n > 0 && mediaLog.info({ deleted: n }, "expired media deleted"), n),
      (err: unknown) => (mediaLog.warn({ err }, "media sweep failed"), 0),
    );

  return {
    access,
    limits,
    outbound,
    webhookIn,
    forgetUser,
    registration,
    commands,
    media,
    sweepMedia,
    checkWebhookUrl: (url: string) => webhookSender.checkUrl(url),
    async close() {
      await mediaFetcher.close();
      await webhookSender.close();
    },
  };
}

export type Flows = ReturnType<typeof createFlows>;
