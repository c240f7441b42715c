// The narrow interfaces the core talks through. Adapters (Redis, Twilio, the sandbox, the XMPP
// component) implement them at the edges; nothing in core/ imports a driver.
import type { MessageRecord, MessageStatus, OutboundJob, XmppDelivery } from "./message.js";

/** A send request handed to an SMS provider. */
export interface SmsSendRequest {
  /** Our message id; the provider puts it in the status-callback URL. */
  id: string;
  from: string; // E.164
  to: string; // E.164, short code digits
  body: string;
  mediaUrls: string[];
}

/** What the provider answered to a create. */
export interface SmsSendResult {
  providerId: string; // Twilio MessageSid
  status: MessageStatus;
}

/**
 * A provider failure, already classified. `retry` says whether sending again is safe: only when the
 * provider certainly did not accept the request (429, connection refused). `ambiguous` means the
 * request may have been accepted (timeout after sending, 5xx): never resend blindly.
 */
export interface ProviderFailure {
  kind: "permanent" | "retry" | "ambiguous";
  /** Provider error code (e.g. 21211) or HTTP status when there is no code. */
  code?: number;
  httpStatus?: number;
  /** Provider's own message, safe to show the user (no secrets in it). */
  message: string;
}

export class ProviderError extends Error {
  constructor(readonly failure: ProviderFailure) {
    super(failure.message);
    this.name = "ProviderError";
  }
}

export interface SmsProvider {
  readonly name: "twilio" | "sandbox";
  /** Throws ProviderError on failure. */
  send(req: SmsSendRequest): Promise<SmsSendResult>;
  /** Validates an inbound webhook signature (sandbox: always true; its routes use the admin token). */
  validateSignature(signature: string | undefined, url: string, params: Record<string, string | string[]>): boolean;
}

/** Links: which bare JID owns which number. Keyed so that one JID may later hold several numbers. */
export interface LinkStore {
  /** Links `jid` to `phone`. Replaces the JID's previous number. Throws a `conflict` GatewayError if another JID holds it. */
  link(jid: string, phone: string): Promise<{ created: boolean; previous?: string }>;
  unlink(jid: string): Promise<boolean>;
  phoneOf(jid: string): Promise<string | undefined>;
  jidOf(phone: string): Promise<string | undefined>;
  list(): Promise<{ jid: string; phone: string }[]>;
}

/** Message records and provider-id maps. */
export interface MessageStore {
  create(record: MessageRecord): Promise<void>;
  get(id: string): Promise<MessageRecord | undefined>;
  /**
   * Moves the status forward only (by rank); a final status never changes. Returns the record after
   * the update and whether this call changed it.
   */
  advance(id: string, status: MessageStatus, patch?: { providerId?: string; errorCode?: number }): Promise<{ record: MessageRecord; changed: boolean } | undefined>;
  /**
   * Marks a one-time event: the provider attempt (so a redelivered job is never sent twice), the
   * receipt, the error report. True only for the first caller.
   */
  markOnce(id: string, what: "attempt" | "receipt" | "error"): Promise<boolean>;
  idForProviderId(providerId: string): Promise<string | undefined>;
}

/** What the pipeline knows about an item it hands to a handler. */
export interface DeliveryMeta {
  /** 1 on the first try; more after the next hop was away or a crash left it pending. */
  attempt: number;
}

/**
 * Durable pipeline. Inbound items are recorded with an idempotency key so a repeated webhook stores
 * nothing. Items wait in Redis streams until a consumer has handled them.
 */
export interface Pipeline {
  /** Toward XMPP. Returns false when `dedupeKey` was already seen (nothing stored). */
  enqueueToXmpp(item: XmppDelivery, dedupeKey?: string): Promise<boolean>;
  /** Toward the provider. */
  enqueueOutbound(job: OutboundJob): Promise<void>;
  /** Starts consumers; handlers resolve when the item is done (acknowledged) or throw to leave it pending. */
  consume(handlers: { toXmpp(item: XmppDelivery, meta: DeliveryMeta): Promise<void>; outbound(job: OutboundJob, meta: DeliveryMeta): Promise<void> }): void;
  stop(): Promise<void>;
}

/** A pipeline handler throws this when the next hop is away (XMPP offline): retry later, never dead-letter. */
export class RetryLater extends Error {
  override name = "RetryLater";
}

/** Sends stanzas to the XMPP server. The core builds plain descriptions; the xmpp layer renders them. */
export interface XmppOut {
  isOnline(): boolean;
  /** `late`: the item waited (server away, crash), so a chat carries XEP-0203 <delay/>. */
  deliver(item: XmppDelivery, opts?: { late?: boolean }): Promise<void>;
}
