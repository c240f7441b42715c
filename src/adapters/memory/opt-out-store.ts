// OptOutStore (core/ports.ts) in memory, as adapters/redis/opt-out-store.ts keeps it: per (our number,
// their number), the first opt-out's time and source stay; opting in removes the entry.
import type { OptOutSource, OptOutStore } from "../../core/ports.js";

export type MemoryOptOutStore = OptOutStore & {
  /** The entries, by "our number their number" (for assertions). */
  readonly entries: ReadonlyMap<string, { at: number; source: OptOutSource }>;
};

export function createMemoryOptOutStore(opts: { now?: () => number } = {}): MemoryOptOutStore {
  const now = opts.now ?? Date.now;
  const entries = new Map<string, { at: number; source: OptOutSource }>();
  const pair = (ours: string, theirs: string) => `${ours} ${theirs}`;
  return {
    entries,
    async isOptedOut(ours, theirs) {
      return entries.has(pair(ours, theirs));
    },
    async optOut(ours, theirs, source) {
      if (entries.has(pair(ours, theirs))) return false;
      entries.set(pair(ours, theirs), { at: now(), source });
      return true;
    },
    async optIn(ours, theirs) {
      return entries.delete(pair(ours, theirs));
    },
  };
}
