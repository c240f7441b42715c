// The media idempotency map in Redis: (message id, media index) → token. In Redis rather than on disk
// because every instance must agree: a redelivery after a crash may be handled by another instance
// (XAUTOCLAIM), and it must serve the URL the first one may already have shown.
import { randomBytes } from "node:crypto";
import type { MediaIndex, MediaTokens } from "../../core/flows/media.js";
import type { Redis } from "./client.js";
import { keys } from "./keys.js";

/** 32 random bytes, base64url: 256 bits nobody can guess (the URL is the only key to the file). */
export function newMediaToken(): string {
  return randomBytes(32).toString("base64url");
}

export function createRedisMediaTokens(redis: Redis): MediaTokens & MediaIndex {
  /** Lists the token under its owner; the list lives as long as its newest item. */
  async function index(owner: string | undefined, token: string, ttlS: number): Promise<void> {
    if (!owner) return;
    const k = keys.userMedia(owner);
    await redis.multi().sAdd(k, token).expire(k, ttlS).exec();
  }

  return {
    async reserve(key, ttlS, owner) {
      const k = keys.mediaToken(key);
      const mine = newMediaToken();
      if ((await redis.set(k, mine, { condition: "NX", expiration: { type: "EX", value: ttlS } })) === "OK") {
        await index(owner, mine, ttlS);
        return mine;
      }
      // Reserved before (a redelivery, or another instance right now): theirs wins. It can only be
      // gone again if it expired in between, and then ours is as good.
      const token = (await redis.get(k)) ?? mine;
      await index(owner, token, ttlS);
      return token;
    },
    async takeOwned(jid) {
      const k = keys.userMedia(jid);
      const [tokens] = (await redis.multi().sMembers(k).del(k).exec()) as unknown as [string[], number];
      return tokens;
    },
  };
}
