// REDIS_MIN_REPLICAS: before the gateway acknowledges a write (a 2xx, no stanza error), WAIT shows that it
// reached that many replicas (the core's Durability port; docs/operators/operations.md "Redis Sentinel and
// replicas" says what this guarantees and what it does not).
//
// - WAIT counts only the writes of the connection it is sent on (docs/facts/redis.md), so it goes on the
//   stores' one connection, after a probe write of its own, and a confirmation fails when that connection
//   may have been replaced since the flow began (a reconnect, a failover: RedisConnection.epoch).
// - WAIT blocks its connection, and with it every command queued behind it. So one WAIT is on the wire
//   at a time and covers everyone whose writes finished before it was sent (a group commit), and once the
//   replicas are known to be behind, confirmations fail at once, without a WAIT, until INFO replication
//   shows enough replicas in sync again.
import type { DurableMark, Durability } from "../../core/ports.js";
import type { RedisConnection, Redis } from "./client.js";
import { keys } from "./keys.js";

/** The writes to acknowledge could not be shown to have reached REDIS_MIN_REPLICAS replicas. */
export class ReplicasBehindError extends Error {
  override name = "ReplicasBehindError";
  constructor(
    message: string,
    /** They were made (on the primary) before this was known: they may still be delivered. */
    readonly written: boolean,
  ) {
    super(message);
  }
}

export interface ReplicaNode {
  host: string;
  port: number;
  /** "online" once it streams from the primary. */
  state: string;
  /** Seconds since it last acknowledged the replication stream (it does every second). */
  lagS: number;
  /** How far into the primary's replication stream it had acknowledged then. */
  offset: number;
}

export interface Replication {
  role: string;
  /** The primary's position in its replication stream. */
  offset: number;
  replicas: ReplicaNode[];
}

/** INFO replication, as far as the gateway reads it. */
export function parseReplication(info: string): Replication {
  const role = /^role:(\w+)/m.exec(info)?.[1] ?? "unknown";
  const replicas: ReplicaNode[] = [];
  for (const m of info.matchAll(/^slave\d+:(.*)$/gm)) {
    const f = Object.fromEntries(
      (m[1] ?? "")
        .trim()
        .split(",")
        .map((kv) => kv.split("=") as [string, string]),
    );
    replicas.push({ host: f.ip ?? "", port: Number(f.port), state: f.state ?? "", lagS: Number(f.lag ?? Infinity), offset: Number(f.offset ?? 0) });
  }
  return { role, offset: Number(/^master_repl_offset:(\d+)/m.exec(info)?.[1] ?? 0), replicas };
}

/** A replica acknowledges every second; one silent for longer is stopped, cut off, or far behind. */
export const inSync = (r: ReplicaNode): boolean => r.state === "online" && r.lagS <= 1;

export async function readReplication(redis: Redis): Promise<Replication> {
  return parseReplication(await redis.info("replication"));
}

export interface ReplicaStatus {
  required: number;
  /** Replicas connected to the primary, and of those in sync, at the last check (undefined before the first one answered). */
  connected?: number;
  inSync?: number;
  /** Since when acknowledged writes are refused, and why. */
  behindSince?: number;
  reason?: string;
}

export interface ReplicaConfirm extends Durability {
  /** False while the replicas are known to be behind (acknowledged writes are refused). */
  ok(): boolean;
  status(): ReplicaStatus;
  stop(): void;
}

export interface ReplicaConfirmOptions {
  /** REDIS_MIN_REPLICAS (> 0). */
  minReplicas: number;
  /** REDIS_REPLICA_WAIT_MS: the WAIT timeout. */
  waitMs: number;
  /** How often INFO replication is read (default 1000 ms). */
  checkIntervalMs?: number;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

export function createReplicaConfirm(conn: RedisConnection, opts: ReplicaConfirmOptions): ReplicaConfirm {
  const n = opts.minReplicas;
  let behindSince: number | undefined;
  let reason: string | undefined;
  // Where the primary's replication stream was at the first check after the replicas fell behind: they
  // count as caught up only once they have acknowledged that far (a replica stopped a moment ago still
  // shows a lag of 0 or 1 s, and would otherwise be taken back at once).
  let catchUpTo: number | undefined;
  let last: { connected: number; inSync: number } | undefined;

  function behind(why: string): void {
    reason = why;
    if (behindSince !== undefined) return;
    behindSince = Date.now();
    catchUpTo = undefined;
    opts.log.warn(
      { required: n, reason: why },
      "Redis replicas are behind: acknowledged writes are refused (inbound SMS go to the journal, API callers and XMPP senders are asked to retry) until they catch up",
    );
  }

  function caughtUp(count: number): void {
    if (behindSince === undefined) return;
    opts.log.info({ required: n, inSync: count, refusedForMs: Date.now() - behindSince }, "Redis replicas in sync again: acknowledged writes are accepted");
    behindSince = undefined;
    reason = undefined;
  }

  let checking = false;
  async function check(): Promise<void> {
    if (checking) return;
    checking = true;
    try {
      const { replicas, offset } = await readReplication(conn.redis);
      const count = replicas.filter(inSync).length;
      last = { connected: replicas.length, inSync: count };
      if (count < n) behind(`${count} of the ${n} replicas required are in sync (INFO replication)`);
      else if (behindSince === undefined) return;
      else if (catchUpTo === undefined) catchUpTo = offset;
      else if (replicas.filter((r) => inSync(r) && r.offset >= catchUpTo!).length >= n) caughtUp(count);
    } catch {
      // Redis is away: every command says so on its own.
    } finally {
      checking = false;
    }
  }
  const timer = setInterval(() => void check(), opts.checkIntervalMs ?? 1000);
  timer.unref();
  void check();

  // The group commit: `inFlight` is the probe and WAIT on the wire; `next` the one sent after it,
  // shared by everyone who asks meanwhile (their writes may have come after inFlight was sent).
  let inFlight: Promise<number> | undefined;
  let next: Promise<number> | undefined;
  function launch(): Promise<number> {
    const p: Promise<number> = conn.redis
      .multi()
      .incr(keys.replicaProbe)
      .wait(n, opts.waitMs)
      .execAsPipeline()
      .then((replies: unknown[]) => Number(replies[1]))
      .finally(() => {
        if (inFlight === p) inFlight = undefined;
      });
    inFlight = p;
    return p;
  }
  function replicasAcked(): Promise<number> {
    if (inFlight === undefined) return launch();
    const after = inFlight.then(
      () => undefined,
      () => undefined,
    );
    next ??= after.then(() => {
      next = undefined;
      return launch();
    });
    return next;
  }

  return {
    mark() {
      if (behindSince !== undefined) throw new ReplicasBehindError(`Redis replicas are behind: ${reason ?? "not enough in sync"}`, false);
      return { at: conn.epoch() };
    },
    async confirm(mark: DurableMark) {
      if (behindSince !== undefined) throw new ReplicasBehindError(`Redis replicas are behind: ${reason ?? "not enough in sync"}`, true);
      const acked = await replicasAcked();
      if (conn.epoch() !== mark.at) throw new ReplicasBehindError("the connection to Redis changed before the replicas could confirm the write", true);
      if (acked < n) {
        behind(`${acked} of the ${n} replicas required acknowledged a write within ${opts.waitMs} ms (WAIT)`);
        throw new ReplicasBehindError(`only ${acked} of ${n} Redis replicas acknowledged the write within ${opts.waitMs} ms`, true);
      }
    },
    ok: () => behindSince === undefined,
    status: () => ({
      required: n,
      ...last,
      ...(behindSince === undefined ? {} : { behindSince, reason }),
    }),
    stop: () => clearInterval(timer),
  };
}
