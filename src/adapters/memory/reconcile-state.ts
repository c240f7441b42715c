// ReconcileState (core/ports.ts) in memory, with the rules of adapters/redis/reconcile-state.ts:
// cursors move forward only, when each number was first seen linked to its owner, and one holder of the lock at a time until it releases it (or, for tests,
// `expireLock()` plays its lapse). For unit tests of core/flows/reconcile.ts.
import type { HeldLock, ReconcileState } from "../../core/ports.js";

export type MemoryReconcileState = ReconcileState & {
  readonly cursors: Map<string, number>;
  /** Plays the lock lapsing (its holder stalled): the next lock() succeeds, the old holder's held() turns false. */
  expireLock(): void;
};

export function createMemoryReconcileState(): MemoryReconcileState {
  const cursors = new Map<string, number>();
  const linked = new Map<string, Map<string, { owner: string; since: number }>>();
  let last: number | undefined;
  let holder: { held: boolean } | undefined;
  return {
    cursors,
    expireLock() {
      if (holder) holder.held = false;
      holder = undefined;
    },
    async cursor(account) {
      return cursors.get(account);
    },
    async advanceCursor(account, at) {
      if (at > (cursors.get(account) ?? 0)) cursors.set(account, at);
    },
    async linkedSince(account, links, firstSeen) {
      const before = linked.get(account) ?? new Map<string, { owner: string; since: number }>();
      const now = new Map<string, { owner: string; since: number }>();
      for (const { number, owner } of links) {
        const was = before.get(number);
        now.set(number, was && was.owner === owner ? was : { owner, since: firstSeen });
      }
      linked.set(account, now);
      return new Map([...now].map(([number, e]) => [number, e.since]));
    },
    async lastRun() {
      return last;
    },
    async markRun(at) {
      last = at;
    },
    async lock(): Promise<HeldLock | undefined> {
      if (holder) return undefined;
      const mine = { held: true };
      holder = mine;
      return {
        held: () => mine.held,
        async release() {
          if (holder === mine) holder = undefined;
          mine.held = false;
        },
      };
    },
  };
}
