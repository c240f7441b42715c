// Leases and live instances (core/cluster/lease-store.ts) in memory, on a clock the test moves: for unit
// tests of the cluster member and the work share, several "instances" sharing one store.
import type { LeaseStore } from "../../core/cluster/lease-store.js";

export type MemoryLeases = LeaseStore & {
  /** While true, every call fails (Redis away). */
  down: boolean;
  /** While set, every call waits until it is cleared (a Redis that accepts but never answers). */
  hang?: Promise<void>;
};

export class MemoryLeasesDown extends Error {
  override name = "MemoryLeasesDown";
}

export function createMemoryLeases(now: () => number = Date.now): MemoryLeases {
  const leases = new Map<string, { value: string; until: number }>();
  const tokens = new Map<string, number>();
  const names = new Map<string, { nonce: string; until: number }>();
  const live = new Map<string, number>();

  const current = (name: string) => {
    const l = leases.get(name);
    if (l && l.until <= now()) leases.delete(name);
    return leases.get(name);
  };
  const store: MemoryLeases = {
    down: false,
    async acquire(name, holder, ttlMs) {
      await gate();
      if (current(name)) return undefined;
      const token = (tokens.get(name) ?? 0) + 1;
      tokens.set(name, token);
      leases.set(name, { value: `${holder}|${token}`, until: now() + ttlMs });
      return token;
    },
    async renew(held, holder, ttlMs) {
      await gate();
      return held.map((h) => {
        const l = current(h.name);
        if (l?.value !== `${holder}|${h.token}`) return false;
        l.until = now() + ttlMs;
        return true;
      });
    },
    async release(lease, holder) {
      await gate();
      if (current(lease.name)?.value === `${holder}|${lease.token}`) leases.delete(lease.name);
    },
    async holderOf(name) {
      await gate();
      const l = current(name);
      if (!l) return undefined;
      const cut = l.value.lastIndexOf("|");
      return { holder: l.value.slice(0, cut), token: Number(l.value.slice(cut + 1)), ttlMs: l.until - now() };
    },
    async heartbeat(instance, nonce, ttlMs) {
      await gate();
      const t = now();
      for (const [id, until] of live) if (until <= t) live.delete(id);
      const n = names.get(instance);
      const taken = n !== undefined && n.until > t && n.nonce !== nonce;
      if (!taken) {
        names.set(instance, { nonce, until: t + ttlMs });
        live.set(instance, t + ttlMs);
      }
      return { taken, live: [...live.keys()].sort() };
    },
    async leave(instance, nonce) {
      await gate();
      if (names.get(instance)?.nonce === nonce) {
        names.delete(instance);
        live.delete(instance);
      }
    },
    isUnavailable: (err) => err instanceof MemoryLeasesDown,
  };
  async function gate(): Promise<void> {
    if (store.hang) await store.hang;
    if (store.down) throw new MemoryLeasesDown("lease store down");
  }
  return store;
}
