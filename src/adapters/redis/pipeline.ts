// The delivery engine (core/delivery/engine.ts) on Redis streams (queues.ts): what the composition root
// and the tests that run the engine against a real Redis build.
import { createDeliveryEngine, type DeliveryEngine, type DeliveryOptions } from "../../core/delivery/engine.js";
import type { Logger } from "../../logger.js";
import type { Redis } from "./client.js";
import { createRedisQueues } from "./queues.js";

export type { QueueStats } from "../../core/delivery/engine.js";
export type PipelineOptions = DeliveryOptions;
export type RedisPipeline = DeliveryEngine;

export function createRedisPipeline(redis: Redis, log: Logger, opts: DeliveryOptions): DeliveryEngine {
  return createDeliveryEngine(createRedisQueues(redis), log, opts);
}
