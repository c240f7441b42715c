// The narrow port the delivery engine (engine.ts) works through: durable queues, each split into
// partitions, with consumer-group semantics. An entry read by a consumer stays pending for it until it
// is acknowledged; entries a consumer left (it died) can be claimed by another. Nothing here decides
// anything: order, attempts, bounces, deadlines and dead letters are the engine's rules.
// adapters/redis/queues.ts implements it with Redis streams and scripts; adapters/memory/queues.ts in
// memory, for unit tests of the engine.
import type { DedupeKey } from "../ports.js";

/** The two directions of delivery: toward XMPP users, and toward the SMS provider or a webhook. */
export type QueueName = "to-xmpp" | "outbound";

/** An entry as stored: its id (increasing with arrival) and the serialized item. */
export interface QueueEntry {
  id: string;
  data: string;
}

/** Store only once under an idempotency key; the marker records `itemId` for `ttlS` seconds. */
export type AddOnce = DedupeKey & { itemId: string; ttlS: number };

/** A consumer's reading position in one partition (adapters may hold a connection for blocking reads). */
export interface QueueReader {
  /**
   * Entries from `cursor`: "0" or an entry id reads this consumer's own pending entries after it (no
   * wait); ">" reads new entries, waiting up to `blockMs` for one. New entries become pending for it.
   */
  read(cursor: string, count: number, blockMs: number): Promise<QueueEntry[]>;
  /** Ends a waiting read at once and releases what the reader holds. */
  close(): void;
}

/** A dead letter as stored: where it came from, why, when, and the item (so it can be retried). */
export interface DeadLetterRow {
  id: string;
  queue: QueueName;
  reason: string;
  at: number;
  data: string;
}

export interface DeliveryQueues {
  /** Adds an entry. With `once`: only when its key was not seen (false: nothing stored). */
  add(queue: QueueName, partition: number, data: string, once?: AddOnce): Promise<boolean>;
  /**
   * Adds an outbound job only while the message record `messageId` exists (a job without its record
   * would be dropped by its sender, after taking the repeat key). "seen": `once` was seen before.
   */
  addJob(partition: number, data: string, messageId: string, once?: AddOnce): Promise<"stored" | "seen" | "no-record">;
  /** The item id recorded under an idempotency key, while it is remembered. */
  marker(key: string): Promise<string | undefined>;
  /** Entries in a partition, waiting or in hand. */
  length(queue: QueueName, partition: number): Promise<number>;
  reader(queue: QueueName, partition: number, consumer: string, blockMs: number): QueueReader;
  /** Acknowledges and removes entries (the trimming rule: nothing unacknowledged is ever removed). */
  ack(queue: QueueName, partition: number, ids: string[]): Promise<void>;
  /** Which of `ids` are still pending (for `consumer`, who takes them if another held them); renews their idle time. */
  stillPending(queue: QueueName, partition: number, consumer: string, ids: string[]): Promise<Set<string>>;
  /** Takes over every entry pending in the partition, whoever held it; how many were someone else's. */
  takeOver(queue: QueueName, partition: number, consumer: string): Promise<number>;
  /** Takes over entries pending for longer than `minIdleMs` (a consumer that died left them); how many. */
  claimIdle(queue: QueueName, partition: number, consumer: string, minIdleMs: number, count: number): Promise<number>;
  /** Moves an entry to the dead letters in one step; false when it had already left its queue. */
  moveToDead(queue: QueueName, partition: number, entry: QueueEntry, reason: string, at: number): Promise<boolean>;
  /** Entries of a partition after `after` (exclusive; undefined: from the start), oldest first. */
  scan(queue: QueueName, partition: number, after: string | undefined, count: number): Promise<QueueEntry[]>;
  /** Dead letters, newest first. */
  deadLetters(limit: number): Promise<DeadLetterRow[]>;
  deadLetter(id: string): Promise<DeadLetterRow | undefined>;
  /** Puts a dead letter back at the end of its queue and partition; false when there is no such dead letter. */
  requeue(id: string): Promise<boolean>;
  /** Deletes dead letters added before `before` (ms since epoch); how many. */
  trimDeadLetters(before: number): Promise<number>;
  /** How many entries wait in a queue's partitions, and when the oldest arrived (ms since epoch). */
  depth(queue: QueueName, partitions: number): Promise<{ depth: number; oldestAt?: number }>;
  deadLetterCount(): Promise<number>;
  /** True when `err` means the store cannot be reached now (retry later), not a fault of the entry. */
  isUnavailable(err: unknown): boolean;
}
