// The narrow interfaces the core talks through. Adapters (Redis, Twilio, the sandbox, the XMPP
// component) implement them at the edges; nothing in core/ imports a driver.
import type { ZodType } from "zod";
import type { InboundSms } from "./flows/sms-in.js";
import type { MessageRecord, MessageStatus, OutboundJob, XmppDelivery } from "./model/message.js";

/** A send request handed to an SMS provider. */
export interface SmsSendRequest {
  /** Our message id; the provider puts it in the status-callback URL. */
  id: string;
  from: string; // E.164
  to: string; // E.164, short code digits
  body: string;
  mediaUrls: string[];
  /** A user's own provider account (REGISTRATION=byo) to send with; absent = the gateway's account. */
  account?: string;
}

/** What the provider answered to a create. */
export interface SmsSendResult {
  providerId: string; // Twilio MessageSid
  status: MessageStatus;
  /** Set when the provider already reports a failure (a message found by lookup). */
  errorCode?: number;
}

/**
 * Asks whether an earlier create of this request reached the provider. `since`: when the first
 * request for it was started (ms since epoch); nothing older can be ours. `isClaimed`: true when
 * another of our records already owns that provider id (the same text sent twice is two messages).
 */
export interface SmsLookupRequest extends SmsSendRequest {
  since: number;
  isClaimed(providerId: string): Promise<boolean>;
}

/** `found`: it went out (adopt it, never resend); `notFound`: it certainly did not; `unknown`: cannot tell. */
export type SmsLookupResult = { found: SmsSendResult } | { notFound: true } | { unknown: string };

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
  /** How long the provider asked us to wait before trying again (its Retry-After), when it said. */
  retryAfterMs?: number;
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
  /** Resolves an ambiguous create by looking the message up at the provider. Never throws. */
  lookup(req: SmsLookupRequest): Promise<SmsLookupResult>;
}

/** An inbound message as the provider's message log shows it (reconciliation: core/flows/reconcile.ts). */
export interface LoggedInboundSms extends InboundSms {
  /** When it reached the provider (ms since epoch). */
  sentAt: number;
  /** False while the provider is still receiving it (an MMS whose media are not all in yet): ingested on a later run. */
  complete: boolean;
}

/** A message's status as the provider reports it now. */
export interface ProviderStatus {
  /** The provider's status word, lower-cased (the core knows which it understands). */
  status: string;
  errorCode?: number;
}

/**
 * The provider's own record of messages, read back to recover what its webhooks never brought (every
 * gateway was down, a callback was lost). Throws ProviderError when the provider cannot be asked.
 */
export interface ProviderMessageLog {
  /** The account asked when none is named (the gateway's own), as its inbound texts carry it; the sandbox: "sandbox". */
  readonly mainAccount: string;
  /**
   * Inbound messages of `account` (absent: the main one) that reached the provider at or after `since`,
   * newest first, fetched a page at a time as they are consumed. Only inbound ones; media as a webhook
   * would name them.
   */
  listInbound(q: { account?: string; since: number }): AsyncIterable<LoggedInboundSms>;
  /** One message's status now; undefined when the provider has no such message (deleted). */
  fetchStatus(q: { providerId: string; account?: string }): Promise<ProviderStatus | undefined>;
}

/** A lock held by one instance; renewed by the adapter until released. */
export interface HeldLock {
  /** False once the lock was lost (could not be renewed): another instance may hold it now. */
  held(): boolean;
  release(): Promise<void>;
}

/** Reconciliation's state, shared by every instance: where each account's last run got to, and who runs now. */
export interface ReconcileState {
  /** ms since epoch up to which every inbound text of `account` was taken in; undefined before the first run. */
  cursor(account: string): Promise<number | undefined>;
  /** Moves `account`'s cursor to `at`, never backwards. */
  advanceCursor(account: string, at: number): Promise<void>;
  /**
   * Since when each of `account`'s linked numbers has been linked to its current owner, as runs saw it:
   * a number seen for the first time, or with another owner than before, counts from `firstSeen`.
   * Numbers no longer listed are forgotten. `owner`: an opaque key of the user (no JID is stored).
   */
  linkedSince(account: string, links: { number: string; owner: string }[], firstSeen: number): Promise<Map<string, number>>;
  /** Takes the lock (one instance reconciles at a time); undefined when another instance holds it. */
  lock(ttlMs: number): Promise<HeldLock | undefined>;
  /** When the last run (on any instance) started, ms since epoch. */
  lastRun(): Promise<number | undefined>;
  markRun(at: number): Promise<void>;
}

/** A provider's webhook as the HTTP face received it. */
export interface ProviderWebhookRequest {
  /** The URL the provider called, as it signed it: PUBLIC_URL + the path and query as received. */
  url: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The decoded body (form fields or JSON), not validated yet. */
  body: unknown;
}

/** What authenticating a webhook proved: the provider account whose secret signed it (none: the sandbox). */
export interface WebhookSigner {
  account?: string;
}

/** A delivery status as a provider reported it. */
export interface ProviderStatusReport {
  /** Our message id, when the callback carries it (in its URL). */
  id?: string;
  providerId: string;
  /** The provider's status word, lower-cased (the core knows which it understands). */
  status: string;
  errorCode?: number;
}

/**
 * A provider's webhooks, proven and read: everything provider-specific about them (paths, fields,
 * signatures, the answer it expects) lives in its adapter; the HTTP face only passes requests in.
 */
export interface ProviderWebhooks {
  /** Where the provider posts, below PUBLIC_URL. */
  readonly paths: { inbound: string; status: string };
  /** The bodies' schemas (zod): validated after authentication, and shown in the API documentation. */
  readonly schemas: { inbound: ZodType; status: ZodType };
  /**
   * Proves who sent the request, before its body is looked at. Throws a GatewayError: `forbidden` (a bad
   * signature, or an account speaking for a number that is not its own), `unavailable` (cannot tell now).
   */
  authenticate(kind: "inbound" | "status", req: ProviderWebhookRequest): Promise<WebhookSigner>;
  /** An inbound message from a validated body; `account`: the signer, which travels with it. */
  readInbound(body: unknown, account: string | undefined): InboundSms;
  /** A status report from a validated body and the query as received. */
  readStatus(body: unknown, query: unknown): ProviderStatusReport;
  /** What to answer the provider once the request is handled. */
  readonly answer: { contentType: string; body: string };
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

/** Why a number is on the opt-out ledger. */
export type OptOutSource = "keyword" | "optout-type" | "provider-21610";

/**
 * The opt-out ledger per (our number, their number): carriers and Twilio block texts to a number that
 * replied STOP, so the gateway refuses them up front and can say why.
 */
export interface OptOutStore {
  isOptedOut(ourNumber: string, theirNumber: string): Promise<boolean>;
  /** Records an opt-out; true when it was not opted out before (worth telling the user). */
  optOut(ourNumber: string, theirNumber: string, source: OptOutSource): Promise<boolean>;
  /** Removes an opt-out; true when it was opted out before. */
  optIn(ourNumber: string, theirNumber: string): Promise<boolean>;
}

/** Which contacts a user has been introduced to (a presence subscription request with a nickname). */
export interface IntroductionStore {
  /** Marks the pair; true only the first time (the caller then sends the introduction). */
  introduce(jid: string, contactLocal: string): Promise<boolean>;
  /** Forgets every contact `jid` was introduced to (the user unlinked or unregistered). */
  forget(jid: string): Promise<void>;
}

/** A user's own provider credentials (REGISTRATION=byo). */
export interface AccountCredentials {
  accountSid: string;
  authToken: string;
}

/**
 * Users' own provider accounts (REGISTRATION=byo): which account a JID sends with, and that account's
 * credentials, sealed at rest under SECRETS_KEY.
 */
export interface AccountStore {
  /** True when credentials can be stored (SECRETS_KEY is set). */
  readonly canStore: boolean;
  /** Records that `jid` sends from `phone` with this account; replaces the JID's previous registration. */
  put(jid: string, phone: string, creds: AccountCredentials): Promise<void>;
  /** The account `jid` registered with, if any. */
  accountOf(jid: string): Promise<string | undefined>;
  /** The account's decrypted credentials and the numbers registered under it; undefined when none are stored. */
  credentials(accountSid: string): Promise<{ authToken: string; numbers: string[] } | undefined>;
  /** Forgets `jid`'s registration; the credentials go with the last number registered under them. */
  remove(jid: string): Promise<{ accountSid?: string }>;
}

/** A number as the provider lists it for an account. */
export interface ProviderNumber {
  /** The provider's id of the number (Twilio PN…). */
  sid: string;
  phone: string;
  smsUrl: string;
  /** The HTTP method of smsUrl (Twilio: POST or GET), when the provider says. */
  smsMethod?: string;
  /** Set when a Messaging Service handles the number's inbound messages (its settings override smsUrl). */
  messagingServiceSid?: string;
}

/** Account-level provider API calls made on a user's behalf (REGISTRATION=byo). */
export interface ProviderAccounts {
  /**
   * The number on that account, or undefined when the account has no such number. Throws a GatewayError
   * saying what went wrong when the credentials are refused or the provider cannot be reached.
   */
  findNumber(creds: AccountCredentials, phone: string): Promise<ProviderNumber | undefined>;
  /** Points the number's inbound messages at `url` (POST). Throws a GatewayError on failure. */
  setSmsUrl(creds: AccountCredentials, numberSid: string, url: string): Promise<void>;
}

/** A webhook target as the core sees it (secrets decrypted only where a request is signed). */
export interface WebhookTarget {
  name: string;
  url: string;
  /** Bare JIDs or `*@domain` patterns allowed to talk to it (and to be messaged by its token). */
  allow: string[];
  createdAt: number;
  updatedAt: number;
}

/** Webhook targets. Tokens are stored as hashes, signing secrets encrypted (SECRETS_KEY). */
export interface WebhookStore {
  /**
   * Creates or updates. On create: generates the secret when none is given and a token, and returns
   * both (the only time they are shown). On update: url/allow/secret change, the token stays.
   */
  put(name: string, input: { url: string; allow: string[]; secret?: string }): Promise<{ created: boolean; target: WebhookTarget; token?: string; secret?: string }>;
  get(name: string): Promise<WebhookTarget | undefined>;
  list(): Promise<WebhookTarget[]>;
  delete(name: string): Promise<boolean>;
  /** New token; the old one stops working at once. Undefined when there is no such target. */
  rotateToken(name: string): Promise<string | undefined>;
  /** Constant-time check of a presented token against the stored hash. */
  checkToken(name: string, token: string): Promise<boolean>;
  /** The decrypted signing secret, for signing one request. */
  signingSecret(name: string): Promise<string | undefined>;
}

/** What a webhook receiver answered, classified. */
export type WebhookResult =
  { kind: "ok"; status: number; reply?: string } | { kind: "permanent"; status?: number; excerpt: string } | { kind: "retry"; reason: string; status?: number; retryAfterMs?: number };

export interface WebhookPayload {
  id: string;
  from: string;
  to: string;
  body: string;
  timestamp: string; // ISO 8601
  media?: string[];
}

/** POSTs signed payloads to receivers, refusing private addresses unless allowed. */
export interface WebhookSender {
  send(url: string, secret: string, payload: WebhookPayload, signal?: AbortSignal): Promise<WebhookResult>;
  /** Throws a GatewayError (bad_request, field "url") when the URL may not be used. */
  checkUrl(url: string): Promise<void>;
  close(): Promise<void>;
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
   * A provider's status callback, signed by `account` (undefined: no signer, the sandbox). Applied (as
   * advance) only when the message was sent with that account and `providerId` is its provider id. Before
   * the create's answer has recorded that id, it is held, and counts once advance records the same id.
   */
  callback(id: string, cb: { status: MessageStatus; providerId: string; account?: string; errorCode?: number }): Promise<CallbackOutcome>;
  /** Marks a one-time event: the receipt, the error report. True only for the first caller. */
  markOnce(id: string, what: "receipt" | "error"): Promise<boolean>;
  idForProviderId(providerId: string): Promise<string | undefined>;
  /**
   * The first step of sending, in one call: when the message is pending, has no provider id and no
   * request in doubt, records that a request is about to start (as beginAttempt) and returns that
   * state; otherwise changes nothing and returns the record and its attempt state. Undefined: no record.
   */
  startSending(id: string): Promise<{ begun: AttemptState } | { record: MessageRecord; attempt: AttemptState } | undefined>;
  /**
   * Records that a request is about to start (`inflight`), if `expectedCount` requests were started
   * so far; undefined when another worker moved it meanwhile (it owns the message now).
   */
  beginAttempt(id: string, expectedCount: number): Promise<AttemptState | undefined>;
  /** Records that the last request certainly created nothing (429, 503, refused, not found by lookup). */
  clearAttempt(id: string): Promise<void>;
  /**
   * Messages handed to the provider (a provider id recorded) whose final status has not arrived, whose
   * next status check is due at or before `upTo` (ms since epoch; a message is due as soon as its provider
   * id is recorded), earliest first, at most `limit`. A message leaves this list when its status is
   * final, when its record is gone, or by scheduleStatusCheck.
   */
  dueStatusChecks(upTo: number, limit: number): Promise<string[]>;
  /** When `id`'s status is next due for a check (ms since epoch); undefined: never (it leaves the list). */
  scheduleStatusCheck(id: string, at: number | undefined): Promise<void>;
}

export type CallbackOutcome =
  | { outcome: "unknown" }
  /** Signed by another account than the one that sent it, or naming another provider id. */
  | { outcome: "refused"; why: "account" | "provider-id" }
  | { outcome: "held" }
  | { outcome: "applied"; record: MessageRecord; changed: boolean };

/**
 * `inflight`: a request was started and its outcome not recorded, so it may have reached the
 * provider (a crash, a timeout). `clear`: the last one certainly did not. `none`: never tried.
 */
export interface AttemptState {
  state: "none" | "inflight" | "clear";
  /** Requests started so far. */
  count: number;
  /** When the first one started (ms since epoch). */
  firstAt?: number;
}

/** What the delivery engine knows about an item it hands to a handler. */
export interface DeliveryMeta {
  /** 1 on the first try; more after the next hop was away or a crash left it pending. */
  attempt: number;
  /** Aborted when the gateway stops: waits inside a handler should end early (the item stays queued). */
  signal?: AbortSignal;
}

/** The XMPP side of delivery: write stanzas, then prove the server processed them. */
export interface XmppSink {
  /** Writes the stanza; throws RetryLater while the server is away. */
  deliver(item: XmppDelivery, meta: DeliveryMeta): Promise<void>;
  /**
   * Resolves once the server has processed everything delivered before it (XEP-0114 has no acks);
   * returns the items it bounced meanwhile, by deliveryKey(), with the server's reason.
   */
  barrier(): Promise<Map<string, string>>;
}

export interface DeadLetter {
  id: string;
  /** Which queue it fell out of. */
  queue: "to-xmpp" | "outbound";
  reason: string;
  at: number;
  item: XmppDelivery | OutboundJob;
}

/** An idempotency key of an item toward XMPP (core/model/message.ts builds them). */
export interface DedupeKey {
  key: string;
  /** The same item's key in the layout before keys had a namespace: seen there also counts as seen. */
  legacy?: string;
  /**
   * Only a marker that holds one of the gateway's own message ids (a ULID) counts. A marker another
   * source wrote under this key before keys had a namespace is replaced instead of honoured.
   */
  ownIdsOnly?: boolean;
}

/**
 * Durable delivery (the engine: core/delivery/engine.ts). Inbound items are recorded with an idempotency key so a repeated webhook stores
 * nothing. Items wait in Redis streams until a consumer has handled them.
 */
export interface Delivery {
  /** Toward XMPP. Returns false when `dedupe` was already seen (nothing stored). */
  enqueueToXmpp(item: XmppDelivery, dedupe?: DedupeKey): Promise<boolean>;
  /** The id of the item first stored under `dedupeKey`, while the key is remembered. */
  idForDedupeKey(dedupeKey: string): Promise<string | undefined>;
  /** Items waiting toward XMPP in the partition `item` would go to (overload signal). */
  backlogFor(item: XmppDelivery): Promise<number>;
  /**
   * Toward the provider. Returns false when `dedupeKey` was already seen (nothing stored). The job's
   * message record must be created first; the create may still be on its way (calls reach the store in
   * the order they are made), and a job whose record is missing is refused (throws).
   */
  enqueueOutbound(job: OutboundJob, dedupeKey?: string): Promise<boolean>;
  /**
   * Starts consumers. A handler resolves when the item is done, or throws to leave it queued. `manual`:
   * no partition is worked until the engine is told which (several instances share them, core/cluster/).
   */
  consume(
    handlers: {
      toXmpp: XmppSink;
      outbound(job: OutboundJob, meta: DeliveryMeta): Promise<void>;
      /** Told about each item given up on (after it is stored as a dead letter). */
      onDeadLetter?(dl: DeadLetter): Promise<void>;
    },
    opts?: { manual?: boolean },
  ): void;
  /** Stops taking new work, finishes (or returns to the queue) what is in hand. */
  stop(): Promise<void>;
  deadLetters(limit: number): Promise<DeadLetter[]>;
  /**
   * Moves every queued item (both directions, all partitions, items in hand included) for which
   * `select` gives a reason to the dead letters, with that reason. The onDeadLetter hook is not told
   * (nobody is sent an error about them). Returns how many were moved.
   */
  deadLetterWhere(select: (queue: DeadLetter["queue"], item: XmppDelivery | OutboundJob) => string | undefined): Promise<number>;
  /**
   * Puts a dead letter back in its queue, unless `refuse` gives a reason not to (it sees the dead
   * letter first).
   */
  retryDeadLetter(id: string, refuse?: (dl: DeadLetter) => Promise<string | undefined>): Promise<{ outcome: "queued" | "not-found" } | { outcome: "refused"; reason: string }>;
}

/** Where a flow's writes began (Durability.mark); opaque to the core. */
export interface DurableMark {
  readonly at: number;
}

/**
 * Replication of what the gateway acknowledges (REDIS_MIN_REPLICAS): a flow marks the start of the writes
 * it is going to acknowledge, and confirms them right before it acknowledges (a 2xx, no stanza error).
 * Either call throws an error the store counts as "unavailable" (Delivery's isUnavailable, the spool's
 * isStoreDown): the flow then answers as when the store is away. Absent: nothing is waited for.
 */
export interface Durability {
  /** Throws, before anything is written, when the writes could not be confirmed now (the replicas are known to be behind). */
  mark(): DurableMark;
  /** Resolves once everything written since `mark` has reached the replicas; throws when it has not in time. */
  confirm(mark: DurableMark): Promise<void>;
}

/** A handler of the delivery engine throws this to give up on an item now: it becomes a dead letter with this reason. */
export class GiveUp extends Error {
  override name = "GiveUp";
}

/** A handler of the delivery engine throws this when the next hop is away (XMPP offline): retry later, never dead-letter. */
export class RetryLater extends Error {
  override name = "RetryLater";
}

/** Sends stanzas to the XMPP server. The core builds plain descriptions; the xmpp layer renders them. */
export interface XmppOut extends XmppSink {
  isOnline(): boolean;
}
