// The message model: records, status ranks, and the items that travel through the delivery engine.
import { createHash, randomBytes, randomFillSync } from "node:crypto";

import { monotonicFactory } from "ulid";

export const MESSAGE_STATUSES = [
  "pending", // accepted by us, not yet handed to the provider
  "accepted",
  "scheduled",
  "queued",
  "sending",
  "sent",
  "delivered",
  "undelivered",
  "failed",
  "canceled",
  "read",
  "partially_delivered",
  "received", // inbound: stored, waiting for XMPP
  "unknown", // ambiguous provider outcome: we could not tell whether it went out
] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

const FINAL: ReadonlySet<MessageStatus> = new Set(["delivered", "undelivered", "failed", "canceled", "read", "partially_delivered"]);

/** Rank for forward-only moves (docs/developers/design.md "XMPP → outside" 6). */
export function statusRank(s: MessageStatus): number {
  switch (s) {
    case "pending":
    case "received":
      return 0;
    case "accepted":
    case "scheduled":
    case "queued":
      return 1;
    case "unknown": // we could not tell whether the provider took it: a real callback still wins
      return 1.5;
    case "sending":
      return 2;
    case "sent":
      return 3;
    default:
      return 4;
  }
}

export function isFinal(s: MessageStatus): boolean {
  return FINAL.has(s);
}

/** True when moving from `current` to `next` is allowed. */
export function canAdvance(current: MessageStatus, next: MessageStatus): boolean {
  if (isFinal(current)) return false;
  return statusRank(next) > statusRank(current);
}

export function isMessageStatus(s: string): s is MessageStatus {
  return (MESSAGE_STATUSES as readonly string[]).includes(s);
}

export interface MessageRecord {
  id: string;
  direction: "out" | "in";
  channel: "sms" | "webhook";
  /** Full JID of the XMPP side (sender for "out", recipient for "in"). */
  jid: string;
  /** The XMPP stanza id of the original (for "out"); receipts and errors refer to it. */
  stanzaId?: string;
  /** The contact's component JID (e.g. +15552223333@sms.example.com). */
  contactJid: string;
  receiptRequested: boolean;
  providerId?: string;
  /**
   * The provider account the message is sent with (the gateway's own, or a user's: REGISTRATION=byo).
   * Only that account's signed status callbacks may change it. Absent: the sandbox, and records made
   * before it was kept (their callbacks must match the stored provider id).
   */
  account?: string;
  status: MessageStatus;
  errorCode?: number;
  createdAt: number;
  updatedAt: number;
}

/** The record of a message an XMPP user just sent, before its next hop has seen it. */
export function newOutgoingRecord(m: {
  id: string;
  channel: MessageRecord["channel"];
  jid: string;
  stanzaId?: string;
  contactJid: string;
  receiptRequested: boolean;
  account?: string;
  now: number;
}): MessageRecord {
  return {
    id: m.id,
    direction: "out",
    channel: m.channel,
    jid: m.jid,
    stanzaId: m.stanzaId,
    contactJid: m.contactJid,
    ...(m.account ? { account: m.account } : {}),
    // A receipt names the original's id (XEP-0184 §5): without one there is nothing to answer.
    receiptRequested: m.receiptRequested && Boolean(m.stanzaId),
    status: "pending",
    createdAt: m.now,
    updatedAt: m.now,
  };
}

/** An outgoing message waiting for its next hop: the SMS provider, or a webhook target. */
export type OutboundJob = SmsJob | WebhookJob;

export interface SmsJob {
  channel?: "sms"; // absent in jobs queued before webhooks existed
  id: string;
  from: string; // E.164 of the user's number
  to: string; // destination (E.164 or short code)
  body: string;
  mediaUrls: string[];
  /**
   * The sender's own provider account (REGISTRATION=byo), fixed when the message is accepted so a
   * queued message goes out with the account it was accepted for; absent = the gateway's account.
   */
  account?: string;
}

export interface WebhookJob {
  channel: "webhook";
  id: string;
  /** Sender's bare JID (the conversation key with `to`). */
  from: string;
  /** The target's name. */
  to: string;
  body: string;
  mediaUrls: string[];
  /** ms since epoch; the retry deadline counts from here, so restarts do not extend it. */
  acceptedAt: number;
}

/** A media item of an inbound MMS, as the provider announced it. */
export interface InboundMedia {
  url: string;
  contentType?: string;
  /**
   * The provider account whose signature the webhook carried. Credentials go only to that account's
   * own media URLs (adapters/media/fetcher.ts); absent (the sandbox, items queued before it was kept):
   * fetched without credentials.
   */
  account?: string;
}

/** Something to send toward an XMPP user; described, not rendered (xmpp/stanzas.ts renders). */
export type XmppDelivery =
  | {
      kind: "chat";
      id: string;
      from: string; // contact JID
      to: string;
      body: string;
      mediaUrls: string[];
      /**
       * Inbound MMS media not yet re-hosted (provider URLs): core/flows/media.ts fetches them just before
       * delivery and adds the gateway's URLs to mediaUrls and the body. Absent once prepared.
       */
      media?: InboundMedia[];
      /** ms since epoch when we accepted it (for XEP-0203 when delivered late). */
      acceptedAt: number;
      /** Message type; chat unless a webhook sender asked otherwise. */
      type?: "chat" | "normal" | "headline";
      subject?: string;
    }
  | { kind: "receipt"; id: string; from: string; to: string; receiptFor: string }
  // A contact introducing itself (RFC 6121 subscription request, XEP-0172 nickname), so the user's
  // client offers to add it; queued before that contact's first message, in the same partition.
  | { kind: "subscribe"; id: string; from: string; to: string; nick: string }
  | {
      kind: "error";
      id: string; // our message id (for logs)
      from: string;
      to: string;
      /** The stanza id of the original message the error answers. */
      replyTo: string;
      condition: string;
      type: "cancel" | "modify" | "auth" | "wait" | "continue";
      text: string;
    };

/** Identifies a delivery among others of the same message (a chat, its receipt, its error reply). */
export function deliveryKey(item: XmppDelivery): string {
  return `${item.kind}:${item.id}`;
}

// ulid's default PRNG calls crypto.getRandomValues once per character (16 calls for each id that
// opens a new millisecond; later ids in the same millisecond increment the last one). A pool of
// random bytes, refilled when used up, costs one call per 4096 characters. ulid takes
// floor(prng() * 32), and 256 is a multiple of 32, so every character stays uniform.
const randomPool = randomBytes(4096);
let randomPoolAt = 0;
function pooledPrng(): number {
  if (randomPoolAt >= randomPool.length) {
    randomFillSync(randomPool);
    randomPoolAt = 0;
  }
  return randomPool[randomPoolAt++]! / 256;
}

const ulid = monotonicFactory(pooledPrng);

/** A new sortable unique message id. */
export function newMessageId(): string {
  return ulid();
}

/**
 * The idempotency key of a user's message: its sender and stanza id. A client resends an unanswered
 * message with its id unchanged (after a stream it could not resume, or by hand), and the gateway
 * must not text the phone twice for it. Hashed: stanza ids are the sender's to choose, of any length.
 */
export function userStanzaKey(fromBare: string, stanzaId: string): string {
  return `stanza:${createHash("sha256").update(`${fromBare}\n${stanzaId}`).digest("base64url")}`;
}

/** The id of an inbound SMS is its provider id, so a replay keeps it. */
export function inboundMessageId(messageSid: string): string {
  return messageSid;
}

// Idempotency keys, one namespace per source, so that no source can choose a key another one uses
// (an inbound text's MessageSid is whatever its signer posted).

/** An inbound text: the account that signed the webhook and its provider id; `sandbox:` without an account. */
export function inboundSmsKey(account: string | undefined, providerId: string): string {
  return account ? `twilio:${account}:${providerId}` : `sandbox:${providerId}`;
}

/**
 * An inbound text's key before keys had a namespace (the bare provider id). Honoured for as long as such
 * keys live (DEDUPE_TTL after an upgrade), so a Twilio retry of a text taken before is still a repeat.
 */
export function legacyInboundSmsKey(providerId: string): string {
  return providerId;
}

/** A message posted to the message-in API with an Idempotency-Key. */
export function messageInKey(webhook: string, idempotencyKey: string): string {
  return `webhook:${webhook}:${idempotencyKey}`;
}
