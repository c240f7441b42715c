// The delivery queues on a real Redis against the queue contract (the in-memory adapter the engine's
// unit tests use runs the same cases in test/unit/delivery-queues.test.ts).
import { keys } from "../../src/adapters/redis/keys.js";
import { createRedisQueues } from "../../src/adapters/redis/queues.js";
import { queuesContract } from "../support/contracts/queues.js";
import { redisClientForFile } from "../support/redis.js";

const redis = redisClientForFile();

queuesContract("redis queues", async () => {
  await redis().flushAll();
  return { queues: createRedisQueues(redis()), createRecord: async (id) => void (await redis().hSet(keys.message(id), "id", id)) };
});
