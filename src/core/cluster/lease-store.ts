// The narrow port behind several instances working together (docs/developers/design.md "Several
// instances"): named leases with fencing tokens, and the list of live instances. Nothing here decides
// anything: who takes what is the cluster member's (cluster-member.ts) and the work share's (work-share.ts).
// adapters/redis/leases.ts implements it in Redis (expiry on the Redis server's clock, so instances'
// clocks need not agree); adapters/memory/leases.ts in memory, for unit tests.

/** A lease as held: its fencing token is larger than every earlier holder's of the same lease. */
export interface HeldLease {
  name: string;
  token: number;
}

export interface LeaseHolder {
  holder: string;
  token: number;
  /** How long it still lasts unless renewed. */
  ttlMs: number;
}

export interface LeaseStore {
  /** Takes the lease for `holder` for `ttlMs` if nobody holds it; its fencing token, or undefined when it is held. */
  acquire(name: string, holder: string, ttlMs: number): Promise<number | undefined>;
  /** Extends each lease that is still held with its token; for each, whether it was. */
  renew(leases: HeldLease[], holder: string, ttlMs: number): Promise<boolean[]>;
  /** Gives the lease up if it is still held with this token (a lost lease is left to its new holder). */
  release(lease: HeldLease, holder: string): Promise<void>;
  /** Who holds the lease now, if anyone. */
  holderOf(name: string): Promise<LeaseHolder | undefined>;
  /**
   * Records `instance` as live for `ttlMs` under `nonce` (one per process), forgets instances whose time
   * ran out, and returns the live ones, sorted. `taken`: another process is live under the same name.
   */
  heartbeat(instance: string, nonce: string, ttlMs: number): Promise<{ taken: boolean; live: string[] }>;
  /** Forgets `instance` at once (a clean stop), if it is still this process's. */
  leave(instance: string, nonce: string): Promise<void>;
  /** True when `err` means the store cannot be reached now. */
  isUnavailable(err: unknown): boolean;
}
