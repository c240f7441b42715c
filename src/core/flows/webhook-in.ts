// Webhook → XMPP (the message-in API): a bot, CI job or alert adapter posts a message that arrives from
// `name@D`, authenticated by the target's own token. The decisions, in order: the token; the target
// still exists; the recipient is a user of a served domain (ALLOWED_DOMAINS, core/policy/access.ts); the
// token's rate (WEBHOOK_IN_PER_MINUTE); the target's allow list; the backlog of the recipient's
// partition (its callers can retry, so under overload it may say "later"); then one durable enqueue,
// stored once per Idempotency-Key. The HTTP route (http/webhook-messages-route.ts) parses the request
// and maps the outcome or the GatewayError to the wire; nothing here knows HTTP.
import { GatewayError } from "../../errors.js";
import type { AccessPolicy } from "../policy/access.js";
import { WEBHOOK_NAME } from "../model/addresses.js";
import type { UsageCounter } from "../policy/limits.js";
import { messageInKey, newMessageId, type XmppDelivery } from "../model/message.js";
import type { Delivery, Durability, WebhookStore } from "../ports.js";
import { isAllowed } from "./webhook-out.js";

/** A message posted to the message-in API, as the route parsed it. */
export interface WebhookInMessage {
  /** The target's name (the path's `:name`). */
  name: string;
  /** The recipient's bare JID. */
  to: string;
  /** `body` (or Slack-style `text`); may be empty when there are media. */
  text: string;
  media: string[];
  type?: "chat" | "normal" | "headline";
  subject?: string;
  /** The Idempotency-Key header: a second message under it is not queued again. */
  idempotencyKey?: string;
}

/** `queued`: stored now. `repeat`: its Idempotency-Key was seen; `id` is the first message's. */
export type WebhookInResult = { outcome: "queued" | "repeat"; id: string };

export interface WebhookInEvents {
  /** A message refused by the token's rate. */
  rateLimited?(): void;
  /** A message taken (`fresh`: not a repeated Idempotency-Key). */
  accepted?(fresh: boolean): void;
}

export interface WebhookInDeps {
  domain: string;
  webhooks: Pick<WebhookStore, "get" | "checkToken">;
  delivery: Pick<Delivery, "enqueueToXmpp" | "idForDedupeKey" | "backlogFor">;
  /** Above this many waiting deliveries in the recipient's partition, "try again later" (WEBHOOK_IN_MAX_BACKLOG). */
  maxBacklog: number;
  /** ALLOWED_DOMAINS: recipients must be users of a served domain; absent: anyone. */
  access?: AccessPolicy;
  /** Messages per minute per webhook token (WEBHOOK_IN_PER_MINUTE); absent or limit 0: no limit. */
  rate?: UsageCounter;
  events?: WebhookInEvents;
  /** REDIS_MIN_REPLICAS: a message is answered 202 only once its writes reached the replicas. */
  durability?: Durability;
  now?: () => number;
  newId?: () => string;
}

/** How long a caller refused for overload is asked to wait. */
export const BACKLOG_RETRY_AFTER_MS = 30_000;

export function createWebhookIn(deps: WebhookInDeps) {
  const now = deps.now ?? Date.now;
  const newId = deps.newId ?? newMessageId;

  /** Whether `token` is the target's current token. An unknown or malformed name is simply not. */
  async function authenticate(name: string, token: string): Promise<boolean> {
    return token.length > 0 && WEBHOOK_NAME.test(name) && (await deps.webhooks.checkToken(name, token));
  }

  /**
   * Queues an authenticated message toward its recipient. Throws a GatewayError saying why it was
   * refused (with retryAfterMs when trying again later can help).
   */
  async function accept(msg: WebhookInMessage): Promise<WebhookInResult> {
    const target = await deps.webhooks.get(msg.name);
    // Deleted between the token check and now.
    if (!target) throw new GatewayError("unauthorized", "A valid token for this webhook is required.");
    const refused = deps.access?.recipientRefused(msg.to);
    if (refused) throw refused;
    if (deps.rate && deps.rate.limit > 0) {
      const taken = await deps.rate.take(msg.name, 1);
      if (!taken.ok) {
        deps.events?.rateLimited?.();
        throw new GatewayError("rate_limited", `This token may post at most ${deps.rate.limit} messages a minute; retry after the Retry-After delay.`, { retryAfterMs: taken.retryAfterMs });
      }
    }
    if (!isAllowed(target.allow, msg.to)) {
      throw new GatewayError("forbidden", `${msg.name} may not message ${msg.to}: it is not in the webhook's allow list.`, { field: "body.to" });
    }
    const item: XmppDelivery = {
      kind: "chat",
      id: newId(),
      from: `${msg.name}@${deps.domain}`,
      to: msg.to,
      // Every client shows the body; not every client renders OOB, so the URLs go in the body too.
      body: [msg.text, ...msg.media].filter((s) => s.length > 0).join("\n"),
      mediaUrls: msg.media,
      acceptedAt: now(),
      ...(msg.type ? { type: msg.type } : {}),
      ...(msg.subject ? { subject: msg.subject } : {}),
    };
    if ((await deps.delivery.backlogFor(item)) > deps.maxBacklog) {
      throw new GatewayError("resource_constraint", "Too many messages are waiting for delivery; retry later.", { retryAfterMs: BACKLOG_RETRY_AFTER_MS });
    }
    // Only a marker holding one of our ids counts: one written under this key by another source
    // before keys had namespaces (e.g. a forged MessageSid) is replaced, not honoured.
    const dedupe = msg.idempotencyKey ? { key: messageInKey(msg.name, msg.idempotencyKey), ownIdsOnly: true } : undefined;
    const mark = deps.durability?.mark();
    const fresh = await deps.delivery.enqueueToXmpp(item, dedupe);
    // A repeat is confirmed too: the first attempt may have been refused before its write was confirmed.
    if (mark) await deps.durability?.confirm(mark);
    deps.events?.accepted?.(fresh);
    if (fresh || !dedupe) return { outcome: "queued", id: item.id };
    return { outcome: "repeat", id: (await deps.delivery.idForDedupeKey(dedupe.key)) ?? item.id };
  }

  return { authenticate, accept };
}

export type WebhookIn = ReturnType<typeof createWebhookIn>;
