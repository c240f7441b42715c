// MediaTokens and MediaIndex (core/flows/media.ts) in memory, as adapters/redis/media-tokens.ts keeps them:
// the first token reserved for a key wins for `ttlS`, and each token is listed under its owner (the
// list lives as long as its newest item) until takeOwned hands the list over and forgets it.
import type { MediaIndex, MediaTokens } from "../../core/flows/media.js";
import { newMediaToken } from "../redis/media-tokens.js";

export function createMemoryMediaTokens(opts: { now?: () => number } = {}): MediaTokens & MediaIndex {
  const now = opts.now ?? Date.now;
  const tokens = new Map<string, { token: string; expiresAt: number }>();
  const owned = new Map<string, { tokens: Set<string>; expiresAt: number }>();

  function index(owner: string | undefined, token: string, ttlS: number): void {
    if (!owner) return;
    const list = owned.get(owner);
    const live = list && list.expiresAt > now() ? list.tokens : new Set<string>();
    live.add(token);
    owned.set(owner, { tokens: live, expiresAt: now() + ttlS * 1000 });
  }

  return {
    async reserve(key, ttlS, owner) {
      const known = tokens.get(key);
      const token = known && known.expiresAt > now() ? known.token : newMediaToken();
      if (token !== known?.token) tokens.set(key, { token, expiresAt: now() + ttlS * 1000 });
      index(owner, token, ttlS);
      return token;
    },
    async takeOwned(jid) {
      const list = owned.get(jid);
      owned.delete(jid);
      return list && list.expiresAt > now() ? [...list.tokens] : [];
    },
  };
}
