// What the two batch processors (to-xmpp.ts, outbound.ts) share with the engine that runs them.
import type { OutboundJob, XmppDelivery } from "../model/message.js";
import type { DeadLetter, DeliveryMeta, XmppSink } from "../ports.js";
import type { DeliveryQueues, QueueEntry, QueueName } from "./queues.js";
import type { DeliveryRules } from "./rules.js";

export interface DeliveryLog {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
}

export interface Handlers {
  toXmpp: XmppSink;
  outbound(job: OutboundJob, meta: DeliveryMeta): Promise<void>;
  /** Told about each item given up on (after it is stored as a dead letter). */
  onDeadLetter?(dl: DeadLetter): Promise<void>;
}

export interface ProcessorContext {
  queues: DeliveryQueues;
  handlers: Handlers;
  consumer: string;
  rules: DeliveryRules;
  claimIdleMs: number;
  log: DeliveryLog;
  isRunning(): boolean;
  /** Aborted when the engine stops: waits inside a handler end early (the item stays queued). */
  stopSignal(): AbortSignal;
  /** Gives up on an entry: moved to the dead letters (unless it left its queue meanwhile), the hook told. */
  deadLetter(queue: QueueName, partition: number, entry: QueueEntry, reason: string): Promise<void>;
  /** Outbound jobs in hand here, by "partition id": taking one out of its queue ends its waits at once. */
  inHand: Map<string, AbortController>;
}

/** The item an entry holds, or undefined when it cannot be read. */
export function parseEntry<T extends XmppDelivery | OutboundJob>(entry: QueueEntry): T | undefined {
  try {
    return JSON.parse(entry.data) as T;
  } catch {
    return undefined;
  }
}

/**
 * `flush` called once for all the items handed in during one turn of the event loop (a batch's jobs
 * finish at about the same time: one store command for them instead of one each). Each caller's promise
 * settles with that flush.
 */
export function coalesced<T, R>(flush: (items: T[]) => Promise<R>): (item: T) => Promise<R> {
  let waiting: { items: T[]; done: Promise<R> } | undefined;
  return (item) => {
    if (!waiting) {
      const items: T[] = [];
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        waiting = undefined;
        return flush(items);
      });
      waiting = { items, done };
    }
    waiting.items.push(item);
    return waiting.done;
  };
}
