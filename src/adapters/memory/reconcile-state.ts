// ReconcileState (core/ports.ts) in memory, with the rules of adapters/redis/reconcile-state.ts:
// cursors move forward only, and one holder of the lock at a time until it releases it (or, for tests,
// `expireLock()` plays its lapse). For unit tests of core/flows/reconcile.ts.
import type { HeldLock, ReconcileState } from "../../core/ports.js";

export type MemoryReconcileState = ReconcileState & {
  readonly cursors: Map<string, number>;
  /** Plays the lock lapsing (its holder stalled): the next lock() succeeds, the old holder's held() turns false. */
  expireLock(): void;
};

export function createMemoryReconcileState(): MemoryReconcileState {
  const cursors = new Map<string, number>();
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
