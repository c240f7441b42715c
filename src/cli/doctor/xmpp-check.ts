// Check 3: the XEP-0114 component link. With a gateway running, its /readyz says how its link is (a
// second connection would get conflict, or with kick_old drop the gateway's); with none, a one-off
// handshake with the configured service, domain and secret.
import type { Config } from "../../config.js";
import { detailsWithheld, type GatewayProbe } from "./gateway-check.js";
import { componentHandshake, type HandshakeResult } from "./handshake.js";
import { fail, ok, skip, type Check } from "./types.js";

interface Explanation {
  detail: string;
  fix: string;
}

/** What a stream error condition or connection error means for the configuration. */
export function explainXmppError(what: string, domain: string | undefined, service: string | undefined): Explanation {
  const d = domain ?? "XMPP_DOMAIN";
  const s = service ?? "XMPP_SERVICE";
  if (/not-authorized/.test(what)) {
    return {
      detail: `the XMPP server refused the component handshake for ${d} (not-authorized): the secret is wrong`,
      fix: `XMPP_SECRET does not match the component_secret in the server config (Prosody: component_secret under Component "${d}"; ejabberd: listen → ejabberd_service → hosts → "${d}" → password; Openfire: the subdomain's shared secret); set the same secret on both sides (ejabberd also answers not-authorized when XMPP_DOMAIN is not one of the listener's hosts)`,
    };
  }
  if (/host-unknown|improper-addressing|item-not-found/.test(what)) {
    return {
      detail: `the XMPP server does not serve ${d} as a component (${what.match(/host-unknown|improper-addressing|item-not-found/)![0]})`,
      fix: `XMPP_DOMAIN must be the component's name in the server config (Prosody: Component "${d}"; ejabberd: a host under the ejabberd_service listener), and not a normal VirtualHost`,
    };
  }
  if (/conflict/.test(what)) {
    return {
      detail: `another component is already connected for ${d} (conflict)`,
      fix: "a component outside this deployment holds the domain (Prosody and Openfire take one connection per component; the instances of one deployment share it through a lease in Redis, so this is another deployment on another Redis, an old gateway, or a diagnostic tool): stop it, or if it is the gateway you meant, point --url at it. (ejabberd also answers conflict when XMPP_DOMAIN is one of its own hosts: use a subdomain such as sms.example.com)",
    };
  }
  if (/invalid-namespace|client port|server-to-server port|has no id/.test(what)) {
    return {
      detail: `${s} does not speak the component protocol (${what})`,
      fix: `XMPP_SERVICE must be xmpp://host:port of the server's component listener (Prosody: component_ports, default 5347; ejabberd: the ejabberd_service listener; Openfire: 5275), not its client port 5222`,
    };
  }
  if (/ECONNREFUSED/.test(what)) {
    return {
      detail: `nothing listens at ${s} (connection refused)`,
      fix: `is the XMPP server running? XMPP_SERVICE must be xmpp://host:port of its component listener (Prosody: component_ports and component_interfaces; ejabberd: the ejabberd_service listener)`,
    };
  }
  if (/ENOTFOUND|EAI_AGAIN/.test(what)) {
    return { detail: `the host of ${s} does not resolve (${what})`, fix: "fix the host name in XMPP_SERVICE (xmpp://host:port)" };
  }
  if (/handshake not completed|within|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(what)) {
    return {
      detail: `${s} did not complete a handshake (${what})`,
      fix: "check XMPP_SERVICE's host and port, and that no firewall drops the connection (the component port is plain TCP: keep it on loopback or a private network)",
    };
  }
  return { detail: `the component link failed: ${what}`, fix: "check XMPP_SERVICE, XMPP_DOMAIN and XMPP_SECRET against the server's component configuration, and the server's log" };
}

/** From the running gateway's /readyz (its component link is shown only with the admin token). */
export function xmppFromReadyz(url: string, g: Extract<GatewayProbe, { state: "running" }>, config: Config | undefined): Check {
  const x = g.readyz.xmpp;
  if (!x) return skip("xmpp", `not checked: ${detailsWithheld(g)}, where a running gateway reports its component link (doctor does not open a second one)`);
  if (x.connected) return ok("xmpp", `the gateway at ${url} is connected to the XMPP server (${x.status}${x.reconnects ? `, ${x.reconnects} reconnects so far` : ""})`);
  // One of several: only the holder of the link lease connects (docs/developers/design.md "Several instances").
  const link = g.readyz.cluster?.xmppLink;
  if (link && !link.heldHere && !x.lastError) {
    if (link.holder) return ok("xmpp", `the gateway at ${url} is a standby: instance ${link.holder} holds the XMPP link (fence ${link.token ?? "?"}); run doctor against it to check the link itself`);
    return fail(
      "xmpp",
      `the gateway at ${url} is a standby and no instance holds the XMPP link right now`,
      "an instance takes the link within LEASE_TTL_MS of the last holder's end; if this stays so, check that every instance reaches Redis (the lease lives there) and the instances' logs",
    );
  }
  const what = x.note ? `conflict: ${x.note}` : (x.lastError ?? `status ${x.status}`);
  const e = explainXmppError(what, config?.XMPP_DOMAIN, config?.XMPP_SERVICE);
  return fail("xmpp", `the gateway at ${url} is not connected (status ${x.status}; ${x.lastError ? `last error: ${x.lastError}` : "no error reported yet"}): ${e.detail}`, e.fix);
}

export function explainHandshake(r: HandshakeResult, config: Config): Check {
  const where = `${config.XMPP_DOMAIN} at ${config.XMPP_SERVICE}`;
  if (r.ok) return ok("xmpp", `component handshake accepted for ${where} (no gateway was running; the test connection is closed)`);
  const what = r.kind === "stream-error" ? `${r.condition}${r.text ? ` (${r.text})` : ""}` : r.kind === "connect" ? `${r.code}: ${r.message}` : r.message;
  const e = explainXmppError(what, config.XMPP_DOMAIN, config.XMPP_SERVICE);
  return fail("xmpp", `handshake for ${where} failed: ${e.detail}`, e.fix);
}

export async function checkXmppHandshake(config: Config, timeoutMs = 5000): Promise<Check> {
  const r = await componentHandshake({ service: config.XMPP_SERVICE, domain: config.XMPP_DOMAIN, secret: config.XMPP_SECRET, timeoutMs });
  return explainHandshake(r, config);
}
