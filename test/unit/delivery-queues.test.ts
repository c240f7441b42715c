// The in-memory delivery queues against the queue contract (the Redis adapter runs the same cases in
// test/integration/redis-queues.test.ts).
import { createMemoryQueues } from "../../src/adapters/memory/queues.js";
import { queuesContract } from "../support/contracts/queues.js";

queuesContract("memory queues", async () => {
  const records = new Set<string>();
  return { queues: createMemoryQueues({ hasRecord: (id) => records.has(id) }), createRecord: async (id) => void records.add(id) };
});
