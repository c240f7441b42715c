// The Delivery (core/ports.ts) for unit tests of the flows: the real delivery engine
// (core/delivery/engine.ts) on the in-memory queues (queues.ts). A flow test reads what its flow
// queued (`toXmpp()`, `outbound()`), or runs consumers over it like the gateway does.
import { createDeliveryEngine, type DeliveryEngine, type DeliveryOptions } from "../../core/delivery/engine.js";
import type { DeliveryLog } from "../../core/delivery/context.js";
import type { OutboundJob, XmppDelivery } from "../../core/model/message.js";
import { createMemoryQueues, type MemoryQueues } from "./queues.js";

export interface MemoryDeliveryOptions extends Partial<DeliveryOptions> {
  /** The message store outbound jobs need a record in (the engine refuses a job without one); absent: none needed. */
  messages?: { has(id: string): boolean };
  now?: () => number;
  log?: DeliveryLog;
}

export type MemoryDelivery = DeliveryEngine & {
  readonly queues: MemoryQueues;
  /** Every item waiting (or in hand) toward XMPP, partition by partition, oldest first. */
  toXmpp(): XmppDelivery[];
  /** Every job waiting (or in hand) toward the provider or a webhook target. */
  outbound(): OutboundJob[];
};

const quiet: DeliveryLog = { info() {}, warn() {}, error() {} };

/** One partition unless told otherwise, so what was queued reads back in the order it was queued. */
export function createMemoryDelivery(opts: MemoryDeliveryOptions = {}): MemoryDelivery {
  const { messages, now, log, ...options } = opts;
  const queues = createMemoryQueues({ ...(now ? { now } : {}), ...(messages ? { hasRecord: (id: string) => messages.has(id) } : {}) });
  const settings: DeliveryOptions = { partitions: 1, dedupeTtlS: 86_400, consumerName: "memory", blockMs: 20, retryDelayMs: { min: 5, max: 20 }, ...options };
  const engine = createDeliveryEngine(queues, log ?? quiet, settings);
  const all = <T>(queue: "to-xmpp" | "outbound"): T[] => {
    const out: T[] = [];
    for (let p = 0; p < settings.partitions; p++) for (const e of queues.entries(queue, p)) out.push(JSON.parse(e.data) as T);
    return out;
  };
  return Object.assign(engine, { queues, toXmpp: () => all<XmppDelivery>("to-xmpp"), outbound: () => all<OutboundJob>("outbound") });
}
