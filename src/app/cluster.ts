// This instance's part in a deployment of several (docs/developers/design.md "Several instances"): the
// cluster member (core/cluster/) holds leases in Redis, and here each lease is tied to the work it
// covers. The XMPP link lease: the component connection and every to-XMPP partition (only the holder
// talks to the XMPP server, so bounces and barrier replies come back to the instance that wrote).
// An outbound partition's lease: that partition's loop toward the provider and webhooks.
import { randomUUID } from "node:crypto";
import type { LeaseStore } from "../core/cluster/lease-store.js";
import { createClusterMember, type ClusterMember, type LeasedWork } from "../core/cluster/cluster-member.js";
import type { DeliveryEngine } from "../core/delivery/engine.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { Connection } from "../xmpp/connection.js";

export interface ClusterDeps {
  leases: LeaseStore;
  delivery: DeliveryEngine;
  connection: Connection;
  instance: string;
  ttlMs: number;
  metrics: Metrics;
  log: Logger;
  onFatal(message: string): void;
}

export function joinCluster(deps: ClusterDeps): ClusterMember {
  const { delivery, connection, log } = deps;
  const all = Array.from({ length: delivery.partitions }, (_, p) => p);
  // Start, stop and release of the link one after the other: a lease lost and taken back must not
  // start the connection while its previous stop is still closing it.
  let linkSteps: Promise<void> = Promise.resolve();
  let pendingSteps = 0;
  const step = (what: string, f: () => Promise<void>) => {
    pendingSteps++;
    linkSteps = linkSteps
      .then(f)
      .catch((err: unknown) => log.error({ err }, `XMPP link: ${what} failed`))
      .finally(() => pendingSteps--);
    return linkSteps;
  };
  /** The token of the link lease while held here: a start queued behind a stop runs only if it is still ours. */
  let holding: number | undefined;
  const link: LeasedWork = {
    acquired(token) {
      holding = token;
      void step("start", async () => {
        if (holding !== token) return;
        log.info({ fence: token }, "holding the XMPP link lease: connecting");
        connection.start();
        // What the last holder wrote and never saw proven is written again from here (same stanza ids).
        await Promise.all(all.map((p) => delivery.startWorking("to-xmpp", p, { takeOver: true })));
      });
    },
    lost() {
      holding = undefined;
      // At once, not after the queued steps: another instance may be connecting already.
      void connection.stop(0);
      void step("stop", async () => {
        await Promise.all(all.map((p) => delivery.stopWorking("to-xmpp", p)));
      });
    },
    release: () => {
      holding = undefined;
      return step("hand-over", async () => {
        // What was written is proven (its barrier) before the link closes, so the next holder repeats nothing.
        await Promise.all(all.map((p) => delivery.stopWorking("to-xmpp", p)));
        await connection.stop();
      });
    },
  };
  // Insurance: the lease held here, no step under way, and the connection neither up nor retrying
  // (xmpp.js stays "offline" when a reconnect is lost): connect again rather than hold the link idle,
  // which would keep every standby out.
  let offlineChecks = 0;
  const guard = setInterval(() => {
    const idle = holding !== undefined && pendingSteps === 0 && connection.state().status === "offline";
    offlineChecks = idle ? offlineChecks + 1 : 0;
    if (offlineChecks >= 2) {
      offlineChecks = 0;
      log.warn({ fence: holding }, "holding the XMPP link lease but not connected or reconnecting: connecting again");
      connection.start();
    }
  }, 2000);
  guard.unref();
  const member = createClusterMember({
    store: deps.leases,
    instance: deps.instance,
    nonce: randomUUID(),
    ttlMs: deps.ttlMs,
    link,
    partitions: {
      count: delivery.partitions,
      work: (p) => ({
        acquired: () => void delivery.startWorking("outbound", p, { takeOver: true }).catch((err: unknown) => log.error({ err, partition: p }, "starting an outbound partition failed")),
        lost: () => void delivery.stopWorking("outbound", p),
        release: () => delivery.stopWorking("outbound", p),
      }),
    },
    log: log.child({ sub: "cluster" }),
    onFatal: deps.onFatal,
    onLost: (lease) => deps.metrics.leaseLost(lease),
  });
  return {
    ...member,
    async stop() {
      clearInterval(guard);
      await member.stop();
    },
  };
}
