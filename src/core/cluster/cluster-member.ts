// One instance's part in a deployment of several (docs/developers/design.md "Several instances"): it
// says it is alive, holds the lease on the XMPP link when it can (one holder at a time), and holds the
// leases of the outbound partitions that the work share (work-share.ts) gives it. Every lease is renewed
// on each tick; the work a lease covers stops the moment it could not be renewed in time, before the
// lease can have expired in the store and been taken by another instance.
//
// Why a local deadline and a fencing token: the store expires a lease ttlMs after the last renewal it
// processed, which is after the renewal was sent. So work stopped by `sent + ttlMs - margin` on this
// instance's clock has stopped before anyone else can take the lease (clocks run at about the same rate,
// and the margin covers a pause). The token, larger for each new holder, makes a renewal or release by
// a holder that lost the lease a no-op instead of taking it back.
import type { HeldLease, LeaseStore } from "./lease-store.js";
import { partitionsOf } from "./work-share.js";

export const LINK_LEASE = "xmpp-link";
const partitionLease = (p: number): string => `outbound:${p}`;

/** What a lease covers, started and stopped by the member. */
export interface LeasedWork {
  /** The lease was taken: start the work (it takes over what the last holder left). */
  acquired(token: number): void;
  /** The lease was lost: stop at once (another instance may already hold it). */
  lost(reason: string): void;
  /** Stop cleanly (finish what is in hand); the lease is released after. */
  release(): Promise<void>;
}

export interface ClusterMemberOptions {
  store: LeaseStore;
  /** INSTANCE_ID: unique among running instances. */
  instance: string;
  /** Unique per process: tells this process from another one started under the same INSTANCE_ID. */
  nonce: string;
  ttlMs: number;
  /** The XMPP link; absent: this instance never holds it. */
  link?: LeasedWork;
  /** Outbound partitions: how many, and the work of each. */
  partitions: { count: number; work(partition: number): LeasedWork };
  log: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
  /** Called once when another running process holds INSTANCE_ID for longer than a crash explains. */
  onFatal(message: string): void;
  /** Told each time a lease is lost (metrics). */
  onLost?(lease: string): void;
  now?: () => number;
  /** Default: a quarter of ttlMs, at most 500 ms (how fast a free link is taken). */
  tickMs?: number;
}

export interface ClusterStatus {
  instance: string;
  /** The live instances, as last seen. */
  live: string[];
  link: { heldHere: boolean; token?: number; heldSince?: number };
  /** Outbound partitions held here. */
  partitions: number[];
  /** Waiting because another process is live under this INSTANCE_ID (a crash's leftover expires within LEASE_TTL_MS). */
  nameTaken: boolean;
  leasesLost: number;
}

interface Holding extends HeldLease {
  validUntil: number;
  since: number;
  work: LeasedWork;
  /** The outbound partition it covers; undefined for the link. */
  partition?: number;
  releasing?: Promise<void>;
}

export function createClusterMember(opts: ClusterMemberOptions) {
  const now = opts.now ?? Date.now;
  const tickMs = opts.tickMs ?? Math.min(500, Math.floor(opts.ttlMs / 4));
  // Work stops this long before the lease could expire in the store.
  const margin = Math.max(Math.floor(opts.ttlMs / 4), 2 * tickMs);
  const held = new Map<string, Holding>();
  let live: string[] = [];
  let takenSince: number | undefined;
  let leasesLost = 0;
  let stopping = false;
  let stopped = true;
  let ticker: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  let ticking: Promise<void> = Promise.resolve();

  function lose(name: string, reason: string): void {
    const h = held.get(name);
    if (!h) return;
    held.delete(name);
    leasesLost++;
    opts.onLost?.(name);
    opts.log.warn({ lease: name, fence: h.token, reason }, "lease lost; its work stopped");
    h.work.lost(reason);
  }

  /** Loses every lease whose deadline passed (a renewal that hangs must not keep work going). */
  function armDeadline(): void {
    clearTimeout(deadline);
    if (held.size === 0) return;
    const first = Math.min(...[...held.values()].map((h) => h.validUntil));
    deadline = setTimeout(
      () => {
        const t = now();
        for (const [name, h] of held) if (h.validUntil <= t) lose(name, `not renewed within ${opts.ttlMs - margin} ms`);
        armDeadline();
      },
      Math.max(0, first - now()),
    );
    deadline.unref();
  }

  /** Until when work under a lease renewed (or taken) by a request sent at `sentAt` may go on. */
  const validAfter = (sentAt: number) => sentAt + opts.ttlMs - margin;

  async function take(name: string, work: LeasedWork, partition?: number): Promise<void> {
    const sentAt = now();
    const token = await opts.store.acquire(name, opts.instance, opts.ttlMs);
    if (token === undefined || stopping) {
      if (token !== undefined) await opts.store.release({ name, token }, opts.instance);
      return;
    }
    held.set(name, { name, token, validUntil: validAfter(sentAt), since: now(), work, ...(partition === undefined ? {} : { partition }) });
    armDeadline();
    opts.log.info({ lease: name, fence: token }, "lease taken");
    work.acquired(token);
  }

  /** Stops the work cleanly, then gives the lease back (renewed meanwhile by the ticks). */
  function giveBack(h: Holding): Promise<void> {
    h.releasing ??= (async () => {
      try {
        await h.work.release();
      } finally {
        // Lost while finishing: the lease is someone else's now, and the work was stopped already.
        if (held.get(h.name) === h) {
          held.delete(h.name);
          armDeadline();
          await opts.store.release(h, opts.instance).catch((err: unknown) => opts.log.warn({ err: (err as Error).message, lease: h.name }, "lease release failed; it expires by itself"));
          opts.log.info({ lease: h.name, fence: h.token }, "lease released");
        }
      }
    })();
    return h.releasing;
  }

  async function tick(): Promise<void> {
    if (!stopping) {
      const beat = await opts.store.heartbeat(opts.instance, opts.nonce, opts.ttlMs);
      live = beat.live;
      if (beat.taken) {
        // Our name's time ran out while we were away, and another process took it: nothing is ours.
        for (const name of [...held.keys()]) lose(name, `another process runs as INSTANCE_ID=${opts.instance}`);
        const first = takenSince === undefined;
        takenSince ??= now();
        if (now() - takenSince > 3 * opts.ttlMs) {
          opts.onFatal(`another running gateway uses INSTANCE_ID=${opts.instance} (against the same Redis): give each instance its own INSTANCE_ID`);
          stopping = true;
        } else if (first) {
          opts.log.warn({ instance: opts.instance }, "INSTANCE_ID is live in Redis under another process (a crash's leftover expires within LEASE_TTL_MS); waiting");
        }
        return;
      }
      takenSince = undefined;
    }
    if (held.size > 0) {
      const leases = [...held.values()];
      const sentAt = now();
      const kept = await opts.store.renew(leases, opts.instance, opts.ttlMs);
      leases.forEach((h, i) => {
        if (held.get(h.name) !== h) return;
        if (kept[i]) h.validUntil = validAfter(sentAt);
        else lose(h.name, "taken by another instance (it expired)");
      });
      armDeadline();
    }
    if (stopping) return;
    if (opts.link && !held.has(LINK_LEASE)) await take(LINK_LEASE, opts.link);
    const mine = new Set(partitionsOf(opts.instance, opts.partitions.count, live));
    for (const h of held.values()) {
      if (h.partition !== undefined && !mine.has(h.partition)) void giveBack(h); // another instance should work it now
    }
    for (const p of mine) if (!held.has(partitionLease(p))) await take(partitionLease(p), opts.partitions.work(p), p);
  }

  // A tick fails every half second while Redis is away: said once, then every half minute, and once more
  // when the store answers again.
  let failingSince: number | undefined;
  let lastSaid = 0;
  function failed(err: unknown): void {
    const t = now();
    if (failingSince === undefined || t - lastSaid >= 30_000) {
      opts.log.warn({ err: (err as Error).message, failingForMs: failingSince === undefined ? 0 : t - failingSince }, "the lease store does not answer; retrying every tick");
      lastSaid = t;
    }
    failingSince ??= t;
  }
  function recovered(): void {
    if (failingSince === undefined) return;
    opts.log.info({ failedForMs: now() - failingSince }, "the lease store answers again");
    failingSince = undefined;
  }

  function schedule(): void {
    if (stopped) return;
    ticker = setTimeout(() => {
      ticking = tick().then(recovered, failed).finally(schedule);
    }, tickMs);
    ticker.unref();
  }

  return {
    start(): void {
      stopped = false;
      stopping = false;
      ticking = tick().then(recovered, failed).finally(schedule);
    },
    /** Stops every leased work cleanly and gives the leases back (the link's within about a second to a standby). */
    async stop(): Promise<void> {
      if (stopped) return;
      stopping = true;
      await ticking;
      // Others stop counting on us at their next tick; the leases are renewed until each is given back.
      await opts.store.leave(opts.instance, opts.nonce).catch(() => undefined);
      await Promise.all([...held.values()].map(giveBack));
      stopped = true;
      clearTimeout(ticker);
      clearTimeout(deadline);
    },
    status(): ClusterStatus {
      const link = held.get(LINK_LEASE);
      return {
        instance: opts.instance,
        live: [...live],
        link: link ? { heldHere: true, token: link.token, heldSince: link.since } : { heldHere: false },
        partitions: [...held.values()]
          .map((h) => h.partition)
          .filter((p): p is number => p !== undefined)
          .sort((a, b) => a - b),
        nameTaken: takenSince !== undefined,
        leasesLost,
      };
    },
  };
}

export type ClusterMember = ReturnType<typeof createClusterMember>;
