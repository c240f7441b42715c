// Every Redis key the gateway uses, with its lifetime. Versioned (sb:v1:) so a later layout can live
// beside this one during a migration.

const P = "sb:v1";

export const keys = {
  /** SET of the numbers a bare JID sends from (today at most one). No TTL: removed on unlink. */
  userNumbers: (jid: string) => `${P}:user:${jid}:numbers`,
  /** SET of the bare JIDs a number belongs to (today at most one; shared numbers are planned). No TTL. */
  numberUsers: (phone: string) => `${P}:number:${phone}:users`,
  /** SET of every linked bare JID, for listing. No TTL. */
  users: `${P}:users`,
  /** STRING the AccountSid a bare JID registered its own provider account with (REGISTRATION=byo). No TTL: removed on unlink/unregister. */
  userAccount: (jid: string) => `${P}:user:${jid}:account`,
  /** HASH a user's own provider account: authToken (sealed, SECRETS_KEY). No TTL: removed with its last number. */
  account: (accountSid: string) => `${P}:account:${accountSid}`,
  /** HASH number → bare JID, the numbers registered under an account. No TTL: entries removed on unlink/unregister. */
  accountNumbers: (accountSid: string) => `${P}:account:${accountSid}:numbers`,
  /** HASH webhook target: url, allow (JSON), secret (sealed, SECRETS_KEY), tokenHash (SHA-256), createdAt, updatedAt. No TTL: removed on delete. */
  webhook: (name: string) => `${P}:webhook:${name}`,
  /** SET of every webhook target name, for listing. No TTL. */
  webhooks: `${P}:webhooks`,
  /**
   * HASH opt-out ledger of one of our numbers: their number → JSON {at, source} while they are opted
   * out (STOP, OptOutType, error 21610); the field is removed when they opt back in. No TTL: consent
   * does not expire.
   */
  optOuts: (ourNumber: string) => `${P}:optout:${ourNumber}`,
  /** SET of the contact localparts a bare JID has been introduced to (presence subscribe + nick). No TTL: removed on unlink/unregister. */
  introduced: (jid: string) => `${P}:user:${jid}:introduced`,
  /**
   * SET of the tokens of re-hosted media delivered to a bare JID, so unlinking/unregistering can delete
   * them. TTL: MEDIA_RETENTION, renewed with each new item (it outlives its newest file, never less).
   */
  userMedia: (jid: string) => `${P}:user:${jid}:media`,
  /** HASH message record (no body). TTL: MESSAGE_RETENTION after its final state; RECORD_MAX_AGE until then. */
  message: (id: string) => `${P}:msg:${id}`,
  /**
   * ZSET ids of messages handed to the provider whose final status has not arrived, scored by when
   * reconciliation next fetches their status (ms). No TTL: an entry leaves when its status is final,
   * when reconciliation gives up on it, and once older than RECORD_MAX_AGE (its record is gone).
   */
  awaitingStatus: `${P}:awaiting-status`,
  /**
   * STRING reconciliation's cursor of one provider account (core/flows/reconcile.ts): ms since epoch up
   * to which every inbound text was taken in. TTL: RECONCILE_STATE_TTL_S, renewed by each run (an older
   * cursor would be clamped to the lookback anyway).
   */
  reconcileCursor: (account: string) => `${P}:reconcile:cursor:${account}`,
  /**
   * HASH of one provider account: linked number → "<owner key>|<ms>", since when reconciliation has seen
   * it linked to its owner (a hash of the JID: no address is kept). A number's field goes with its link
   * at the next run. TTL: RECONCILE_STATE_TTL_S, renewed by each run.
   */
  reconcileLinked: (account: string) => `${P}:reconcile:linked:${account}`,
  /** STRING when the last reconciliation started (ms), on any instance. TTL: RECONCILE_STATE_TTL_S. */
  reconcileLast: `${P}:reconcile:last`,
  /** STRING the token of the instance reconciling now. TTL: a minute, renewed while it runs. */
  reconcileLock: `${P}:reconcile:lock`,
  /** STRING provider id (MessageSid) → our id. TTL: MESSAGE_RETENTION. */
  providerId: (sid: string) => `${P}:sid:${sid}`,
  /**
   * STRING token of a re-hosted media item, by the signing account, message id and index
   * ("AC…:MM…:0"; "MM…:0" without an account): a redelivery reuses it. TTL: MEDIA_RETENTION.
   */
  mediaToken: (key: string) => `${P}:media:${key}`,
  /**
   * STRING idempotency marker, holding the id of the first item stored under it. Keys have one
   * namespace per source (core/model/message.ts): `twilio:<AccountSid>:<MessageSid>` (`sandbox:<id>`),
   * `webhook:<name>:<Idempotency-Key>`, `stanza:<hash of sender and stanza id>`; a bare MessageSid is the
   * layout before namespaces, still honoured for inbound texts. TTL: DEDUPE_TTL.
   */
  seen: (key: string) => `${P}:seen:${key}`,
  /**
   * STREAM toward XMPP users, partitioned by conversation; entries carry bodies. Trimmed by deleting
   * acknowledged entries; entries addressed to a user who unlinks are moved to the dead letters.
   */
  toXmppStream: (partition: number) => `${P}:stream:to-xmpp:${partition}`,
  /**
   * STREAM toward the provider, partitioned by conversation; entries carry bodies. Trimmed by deleting
   * acknowledged entries; jobs of a user who unlinks are moved to the dead letters.
   */
  outboxStream: (partition: number) => `${P}:stream:outbox:${partition}`,
  /**
   * STRING usage counters of the limits (rate-limiter-flexible: `<prefix>:<key>`, e.g. a user's messages
   * this minute, their segments today, the gateway's segments this hour). TTL: the limit's window.
   */
  limitPrefix: (name: string) => `${P}:limit:${name}`,
  /**
   * STREAM of items given up on, with the reason and the item (bodies included, so they can be retried).
   * Entries older than DEAD_LETTER_RETENTION are trimmed (XTRIM MINID, run periodically by the
   * delivery engine); also capped (approximately) at DEAD_LETTER_MAX entries.
   */
  deadLetters: `${P}:stream:dead`,
  /**
   * STRING a lease held by one instance (core/cluster/): "<instance>|<fencing token>". TTL: LEASE_TTL_MS,
   * renewed by its holder. `xmpp-link`: the component link; `outbound:<n>`: an outbound partition.
   */
  lease: (name: string) => `${P}:lease:${name}`,
  /** STRING the last fencing token handed out for a lease (INCR, and at least the Redis time in ms). No TTL: tokens must only grow. */
  leaseToken: (name: string) => `${P}:lease-token:${name}`,
  /** ZSET live instances, scored by when each stops counting as live (ms, Redis clock). Expired members removed on each heartbeat. */
  instances: `${P}:instances`,
  /** STRING the process (a random nonce) running as an INSTANCE_ID. TTL: LEASE_TTL_MS, renewed by it. */
  instance: (id: string) => `${P}:instance:${id}`,
  /**
   * STRING counter written just before each WAIT (REDIS_MIN_REPLICAS > 0, replicas.ts), so the WAIT has a
   * write of its own connection to wait for. No TTL: one small key.
   */
  replicaProbe: `${P}:replica-probe`,
} as const;

/** Consumer group of every stream of the delivery engine. */
export const GROUP = "switchboard";

/** Safety net: a record that never reaches a final state still expires. */
export const RECORD_MAX_AGE_S = 30 * 86400;

export const DEAD_LETTER_MAX = 100_000;

/** Lifetime of reconciliation's cursors and last-run time: RECONCILE_LOOKBACK's largest value. */
export const RECONCILE_STATE_TTL_S = 30 * 86400;
