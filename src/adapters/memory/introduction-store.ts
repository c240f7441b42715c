// IntroductionStore (core/ports.ts) in memory, as adapters/redis/opt-out-store.ts keeps it: a set of
// introduced contacts per bare JID; true only the first time a pair is marked.
import type { IntroductionStore } from "../../core/ports.js";

export type MemoryIntroductionStore = IntroductionStore & {
  /** The contacts each JID was introduced to (for assertions). */
  readonly introduced: ReadonlyMap<string, ReadonlySet<string>>;
};

export function createMemoryIntroductionStore(): MemoryIntroductionStore {
  const introduced = new Map<string, Set<string>>();
  return {
    introduced,
    async introduce(jid, contactLocal) {
      const known = introduced.get(jid) ?? new Set<string>();
      introduced.set(jid, known);
      if (known.has(contactLocal)) return false;
      known.add(contactLocal);
      return true;
    },
    async forget(jid) {
      introduced.delete(jid);
    },
  };
}
