// Is a gateway running at --url? Its /readyz answers anyone with its status; with the admin token
// (sent when the environment has one) the body also reports Redis, the journal, the component link and
// the provider (src/http/health-routes.ts). While one runs, the doctor never opens a component
// connection of its own: it reads the link's state from here.
import { probe } from "../api-client.js";
import { fail, ok, skip, type Check } from "./types.js";

export interface Readyz {
  status: string;
  redis?: string;
  redisSetup?: { mode: string; primary?: string; replicas?: { required: number; connected?: number; inSync?: number; reason?: string } };
  journal?: { writable: boolean; pending: number; error?: string };
  xmpp?: { connected: boolean; status: string; reconnects: number; note?: string; lastError?: string };
  provider?: string;
  breaker?: { tripped: boolean; note?: string };
  /** This instance's part in a deployment of several (src/app/cluster.ts). */
  cluster?: {
    instance: string;
    liveInstances: string[];
    xmppLink: { heldHere: boolean; holder?: string; token?: number };
    outboundPartitions: number[];
    leasesLost: number;
    note?: string;
  };
}

/** One line on the instance's leases: who holds the link, which outbound partitions it works. */
export function clusterSummary(c: NonNullable<Readyz["cluster"]>): string {
  const link = c.xmppLink.heldHere
    ? `holds the XMPP link (fence ${c.xmppLink.token ?? "?"})`
    : c.xmppLink.holder
      ? `standby: ${c.xmppLink.holder} holds the XMPP link (fence ${c.xmppLink.token ?? "?"})`
      : "standby: no instance holds the XMPP link";
  const parts = c.outboundPartitions.length > 0 ? `works outbound partitions ${c.outboundPartitions.join(",")}` : "works no outbound partition";
  return `instance ${c.instance} of ${c.liveInstances.length} live (${c.liveInstances.join(", ")}), ${link}, ${parts}${c.leasesLost ? `, ${c.leasesLost} leases lost so far` : ""}${c.note ? ` (${c.note})` : ""}`;
}

export type GatewayProbe =
  /** A Switchboard gateway answered. */
  | { state: "running"; readyz: Readyz; /** the admin token was sent */ tokenSent: boolean }
  /** Nothing listens there (connection refused, no such host): no gateway runs at that URL. */
  | { state: "absent"; reason: string }
  /** Something answered, or the answer timed out: whether a gateway runs cannot be told. */
  | { state: "unknown"; reason: string };

const STATUSES = ["ready", "degraded", "unavailable"];

/** The full report (with the token), or the short one anyone gets: {"status": "ready"|"degraded"|"unavailable"}. */
function isReadyz(v: unknown): v is Readyz {
  if (typeof v !== "object" || v === null || typeof (v as Readyz).status !== "string") return false;
  const r = v as Readyz;
  return typeof r.xmpp === "object" || (STATUSES.includes(r.status) && Object.keys(r).length === 1);
}

/** Why /readyz showed only its status, for a check's detail. */
export function detailsWithheld(g: Extract<GatewayProbe, { state: "running" }>): string {
  return g.tokenSent
    ? "the gateway did not accept the admin token (SWITCHBOARD_ADMIN_TOKEN or ADMIN_TOKEN), so /readyz showed its status only"
    : "no admin token (SWITCHBOARD_ADMIN_TOKEN or ADMIN_TOKEN), so /readyz showed its status only";
}

export async function probeGateway(url: string, timeoutMs = 5000, token?: string): Promise<GatewayProbe> {
  const p = await probe(`${url}/readyz`, timeoutMs, token);
  if (!p.answered) {
    const absent = ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ECONNRESET"].includes(p.code);
    return absent ? { state: "absent", reason: `${p.code}: ${p.message}` } : { state: "unknown", reason: `${p.code}: ${p.message}` };
  }
  let body: unknown;
  try {
    body = JSON.parse(p.body);
  } catch {
    body = undefined;
  }
  if (isReadyz(body)) return { state: "running", readyz: body, tokenSent: token !== undefined };
  return { state: "unknown", reason: `GET ${url}/readyz answered ${p.status} ${p.contentType.split(";")[0] || "without a content type"}, not a Switchboard readiness report` };
}

export function gatewayCheck(url: string, g: GatewayProbe, haveConfig: boolean): Check {
  if (g.state === "absent") {
    const detail = `no gateway answers at ${url} (${g.reason})`;
    return haveConfig
      ? skip("gateway", `${detail}: checking with the local configuration, including a component handshake of its own`)
      : fail("gateway", detail, "start the gateway, or point at it with --url or SWITCHBOARD_URL (or run doctor where its .env is)");
  }
  if (g.state === "unknown") {
    return fail(
      "gateway",
      `cannot tell whether a gateway runs at ${url}: ${g.reason}`,
      "point --url (or SWITCHBOARD_URL) at the gateway's own HTTP listener (HTTP_HOST:HTTP_PORT), not at another service",
    );
  }
  const r = g.readyz;
  const parts = r.xmpp ? [`status ${r.status}`, `redis ${r.redis ?? "?"}`, `provider ${r.provider ?? "?"}`] : [`status ${r.status}`, detailsWithheld(g)];
  if (r.cluster) parts.push(clusterSummary(r.cluster));
  const setup = r.redisSetup;
  if (setup) parts.push(`redis ${setup.mode === "sentinel" ? "via Sentinels, " : ""}primary ${setup.primary ?? "none ready"}`);
  if (setup?.replicas) parts.push(`${setup.replicas.inSync ?? "?"} of ${setup.replicas.connected ?? "?"} replicas in sync (REDIS_MIN_REPLICAS=${setup.replicas.required})`);
  if (r.journal) parts.push(`journal ${r.journal.writable ? "writable" : "NOT writable"}, ${r.journal.pending} pending`);
  if (r.breaker?.tripped) parts.push(`breaker TRIPPED (${r.breaker.note ?? "sending stopped"})`);
  if (r.status === "unavailable") {
    return fail(
      "gateway",
      `the gateway at ${url} cannot store messages: ${parts.join(", ")}`,
      "Redis is unreachable from the gateway and its journal (JOURNAL_DIR) is not writable: bring Redis back (REDIS_URL) and make JOURNAL_DIR writable",
    );
  }
  if (r.breaker?.tripped) {
    return fail(
      "gateway",
      `the gateway at ${url} runs but its breaker stopped all sending: ${parts.join(", ")}`,
      'wait for the hour to end, or reset it: curl -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" ' + url + "/api/v1/breaker (and check BREAKER_SEGMENTS_PER_HOUR)",
    );
  }
  if (r.status === "degraded" && r.redis === "replicas behind") {
    return fail(
      "gateway",
      `the gateway at ${url} cannot confirm writes on its Redis replicas, so it refuses to acknowledge them (inbound SMS wait in the journal): ${parts.join(", ")}${setup?.replicas?.reason ? ` (${setup.replicas.reason})` : ""}`,
      "bring the replicas back in sync with the primary (or lower REDIS_MIN_REPLICAS); the journal is replayed once they are",
    );
  }
  if (r.status === "degraded") {
    return fail("gateway", `the gateway at ${url} runs without Redis (inbound SMS wait in the journal): ${parts.join(", ")}`, "bring Redis back at REDIS_URL; the journal is replayed once it answers");
  }
  return ok("gateway", `running at ${url}: ${parts.join(", ")}`);
}
