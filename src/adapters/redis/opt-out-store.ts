// The opt-out ledger and the introduced-contacts sets in Redis (keys.optOuts, keys.introduced).
import { LRUCache } from "lru-cache";
import type { IntroductionStore, OptOutSource, OptOutStore } from "../../core/ports.js";
import type { Redis } from "./client.js";
import { keys } from "./keys.js";

export function createRedisOptOutStore(redis: Redis): OptOutStore {
  return {
    async isOptedOut(ourNumber, theirNumber) {
      return (await redis.hExists(keys.optOuts(ourNumber), theirNumber)) === 1;
    },
    async optOut(ourNumber, theirNumber, source: OptOutSource) {
      // HSETNX: the first opt-out's time and source stay; a repeated STOP is not news.
      return (await redis.hSetNX(keys.optOuts(ourNumber), theirNumber, JSON.stringify({ at: Date.now(), source }))) === 1;
    },
    async optIn(ourNumber, theirNumber) {
      return (await redis.hDel(keys.optOuts(ourNumber), theirNumber)) === 1;
    },
  };
}

export function createRedisIntroductionStore(redis: Redis): IntroductionStore {
  // Pairs known to be introduced already: asked about with every inbound text, they spare it a Redis
  // round trip. A pair is only ever added here after Redis said it is marked; forget() on this instance
  // clears the user's pairs, one on another instance is seen here after the entry expires.
  const known = new LRUCache<string, true>({ max: 50_000, ttl: 10 * 60_000 });
  const pair = (jid: string, contactLocal: string) => `${jid}\n${contactLocal}`;
  return {
    async introduce(jid, contactLocal) {
      if (known.has(pair(jid, contactLocal))) return false;
      const first = (await redis.sAdd(keys.introduced(jid), contactLocal)) === 1;
      known.set(pair(jid, contactLocal), true);
      return first;
    },
    async forget(jid) {
      for (const k of [...known.keys()]) if (k.startsWith(`${jid}\n`)) known.delete(k);
      await redis.del(keys.introduced(jid));
    },
  };
}
