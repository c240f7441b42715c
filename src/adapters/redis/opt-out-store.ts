// The opt-out ledger and the introduced-contacts sets in Redis (keys.optOuts, keys.introduced).
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
  return {
    async introduce(jid, contactLocal) {
      return (await redis.sAdd(keys.introduced(jid), contactLocal)) === 1;
    },
    async forget(jid) {
      await redis.del(keys.introduced(jid));
    },
  };
}
