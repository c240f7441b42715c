// The delivery engine (core/delivery/engine.ts) on Redis streams (queues.ts): what the composition root
// and the tests that run the engine against a real Redis build.
import { createDeliveryEngine, type DeliveryEngine, type DeliveryOptions } from "../../core/delivery/engine.js";
import type { Logger } from "../../logger.js";
import type { Redis } from "./client.js";
import { createRedisQueues } from "./queues.js";

export function createRedisDelivery(redis: Redis, log: Logger, opts: DeliveryOptions): DeliveryEngine {
  return createDeliveryEngine(createRedisQueues(redis), log, opts);
}
