// Several gateway processes of one deployment, as the fault tests see them: each one's /readyz
// details (its leases), which one holds the XMPP link, and the verdict on a traffic report.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PROCESS_ADMIN_TOKEN, startGatewayProcess, type GatewayProcess } from "./gateway-process.js";
import type { TrafficReport } from "./traffic.js";
import { waitUntil } from "./wait.js";

export interface Details {
  xmpp: { connected: boolean };
  cluster: { instance: string; xmppLink: { heldHere: boolean; token?: number }; outboundPartitions: number[]; liveInstances: string[] };
}

export async function clusterDetails(g: GatewayProcess): Promise<Details | undefined> {
  if (!g.running()) return undefined;
  try {
    const res = await fetch(`${g.url}/readyz`, { headers: { authorization: `Bearer ${PROCESS_ADMIN_TOKEN}` }, signal: AbortSignal.timeout(2000) });
    return (await res.json()) as Details;
  } catch {
    return undefined;
  }
}

/** The instance holding the link and connected, if exactly one does; fails if two hold the lease. */
export async function linkHolder(gateways: GatewayProcess[]): Promise<GatewayProcess | undefined> {
  const all = await Promise.all(gateways.map(clusterDetails));
  const holding = gateways.filter((_, i) => all[i]?.cluster.xmppLink.heldHere);
  assert.ok(holding.length <= 1, `${holding.length} instances hold the XMPP link lease at once`);
  const h = holding[0];
  return h && all[gateways.indexOf(h)]?.xmpp.connected ? h : undefined;
}

/** Nothing lost, doubled or reordered either way; `sameIdRepeatsAllowed`: after a crash of the link holder. */
export function assertClean(t: { diagnostic(m: string): void }, what: string, r: TrafficReport, opts: { sameIdRepeatsAllowed: boolean }): void {
  t.diagnostic(`${what}: ${JSON.stringify(r)}`);
  assert.ok(r.inbound.sent > 20 && r.outbound.sent > 20, "traffic flowed");
  assert.equal(r.inbound.lost, 0, "inbound lost");
  assert.equal(r.outbound.lost, 0, "outbound lost");
  assert.equal(r.inbound.doubled, 0, "an inbound text delivered twice under different ids");
  assert.equal(r.outbound.doubled, 0, "a text sent twice to a phone");
  assert.equal(r.inbound.orderViolations, 0, "inbound order");
  assert.equal(r.outbound.orderViolations, 0, "outbound order");
  if (!opts.sameIdRepeatsAllowed) assert.equal(r.inbound.sameIdRepeats, 0, "a clean hand-over repeats nothing");
  if (r.webhook) {
    assert.ok(r.webhook.sent > 10, "webhook traffic flowed");
    assert.equal(r.webhook.lost, 0, "webhook lost");
    assert.equal(r.webhook.doubled, 0, "a message POSTed twice to the webhook");
    assert.equal(r.webhook.orderViolations, 0, "webhook order");
  }
}

/**
 * Starts one gateway process per name (its INSTANCE_ID) with `env`, all at once, and waits until one
 * holds the XMPP link and is connected.
 */
export async function startInstances(env: Record<string, string>, names: string[]): Promise<GatewayProcess[]> {
  const gateways: GatewayProcess[] = [];
  for (const name of names) gateways.push(await startGatewayProcess({ ...env, INSTANCE_ID: name }));
  await Promise.all(gateways.map((g) => g.start()));
  await waitUntil(async () => (await linkHolder(gateways)) !== undefined, { timeoutMs: 20_000, what: "one instance holding the XMPP link" });
  return gateways;
}

/** SIGKILLs them all; with KEEP_LOGS=dir, their logs are kept there first (their temp dirs go). */
export async function stopInstances(gateways: GatewayProcess[]): Promise<void> {
  await Promise.allSettled(gateways.map((g) => g.kill()));
  const dir = process.env.KEEP_LOGS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  gateways.forEach((g, i) => writeFileSync(join(dir, `instance-${i}.log`), g.log()));
}
