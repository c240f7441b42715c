// Keeps webhook requests off the gateway's own network (SSRF): a registered URL must not reach
// loopback, link-local (cloud metadata at 169.254.169.254), private or otherwise special addresses.
// Checked at registration and again at every connection, on the very addresses the socket then
// uses (a custom `lookup` for net/tls.connect), so a name that re-resolves to 127.0.0.1 after
// registration (DNS rebinding) is refused too.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";
import { GatewayError } from "../../errors.js";

export interface AddressVerdict {
  allowed: boolean;
  /** ipaddr.js range name ("unicast", "loopback", "private", "uniqueLocal", ...), or "ipv4Mapped:loopback" and the like. */
  range: string;
}

// IPv6 forms that carry an IPv4 address in their low 32 bits: the destination is really that IPv4
// address (through the kernel, a translator or a relay), so it is judged as that address.
const EMBEDS_IPV4_LOW32: [ipaddr.IPv6, number, string][] = [
  [ipaddr.IPv6.parse("::ffff:0:0"), 96, "ipv4Mapped"], // RFC 4291 §2.5.5.2
  [ipaddr.IPv6.parse("::"), 96, "ipv4Compatible"], // RFC 4291 §2.5.5.1 (deprecated, still routed by some stacks)
  [ipaddr.IPv6.parse("::ffff:0:0:0"), 96, "rfc6145"], // SIIT
  [ipaddr.IPv6.parse("64:ff9b::"), 96, "nat64"], // RFC 6052 well-known NAT64 prefix
];
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR("2000::/3"); // RFC 4291 §2.4: all else is special or unassigned
const SIX_TO_FOUR = ipaddr.IPv6.parseCIDR("2002::/16"); // RFC 3056: IPv4 in bits 16..47

/**
 * Judges one IP address. Allowed: public unicast only (IPv4 that ipaddr.js calls "unicast"; IPv6 in
 * 2000::/3 that it calls "unicast"), and IPv6 forms embedding an allowed IPv4 address.
 */
export function classifyAddress(address: string): AddressVerdict {
  const text = address.replace(/^\[|\]$/g, "").replace(/%.*$/, ""); // brackets, zone id (fe80::1%eth0)
  if (!ipaddr.isValid(text) || isIP(text) === 0) return { allowed: false, range: "invalid" };
  const ip = ipaddr.parse(text);
  if (ip.kind() === "ipv4") {
    const range = ip.range();
    return { allowed: range === "unicast", range };
  }
  const v6 = ip as ipaddr.IPv6;
  const special = v6.range();
  if (special === "unspecified" || special === "loopback") return { allowed: false, range: special };
  for (const [prefix, bits, name] of EMBEDS_IPV4_LOW32) {
    if (v6.match(prefix, bits)) return embedded(name, v6.parts[6] ?? 0, v6.parts[7] ?? 0);
  }
  if (v6.match(SIX_TO_FOUR)) return embedded("6to4", v6.parts[1] ?? 0, v6.parts[2] ?? 0);
  return { allowed: special === "unicast" && v6.match(GLOBAL_UNICAST_V6), range: special };
}

function embedded(form: string, hi: number, lo: number): AddressVerdict {
  const v4 = new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const inner = v4.range();
  return { allowed: inner === "unicast", range: `${form}:${inner}` };
}

/** `localhost` and `*.localhost` are loopback by definition (RFC 6761 §6.3), whatever DNS says. */
export function isLocalhostName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return h === "localhost" || h.endsWith(".localhost");
}

/** Raised when a webhook host is, or resolves to, an address that may not be used. */
export class ForbiddenAddressError extends Error {
  override readonly name = "ForbiddenAddressError";
  readonly code = "ERR_WEBHOOK_FORBIDDEN_ADDRESS";
  constructor(
    readonly host: string,
    readonly address: string | undefined,
    readonly range: string,
  ) {
    super(
      address === undefined || address === host
        ? `${host} is a ${range} address; webhook targets must be public (WEBHOOK_ALLOW_PRIVATE=true allows private ones)`
        : `${host} resolves to ${address} (${range}); webhook targets must be public (WEBHOOK_ALLOW_PRIVATE=true allows private ones)`,
    );
  }
}

/** Resolves a host name to all its addresses (dns.lookup with all: true, i.e. getaddrinfo like the socket would). */
export type Resolver = (host: string, family?: number) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (host, family) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, family: family ?? 0 }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
  });

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, "");
}

/**
 * The addresses to connect to for `host`, each one checked. Throws ForbiddenAddressError when any
 * of them is forbidden (one bad answer is enough: the socket may pick any of them).
 */
export async function resolveChecked(host: string, allowPrivate: boolean, resolve: Resolver, family?: number): Promise<LookupAddress[]> {
  const bare = host.replace(/^\[|\]$/g, "");
  const literal = isIP(bare);
  if (!allowPrivate && isLocalhostName(bare)) throw new ForbiddenAddressError(bare, undefined, "loopback (localhost)");
  const addresses = literal ? [{ address: bare, family: literal }] : await resolve(bare, family);
  if (addresses.length === 0) throw Object.assign(new Error(`${bare} has no address`), { code: "ENOTFOUND" });
  if (!allowPrivate) {
    for (const a of addresses) {
      const v = classifyAddress(a.address);
      if (!v.allowed) throw new ForbiddenAddressError(bare, a.address, v.range);
    }
  }
  return addresses;
}

/** A `lookup` for net.connect/tls.connect that hands the socket only checked addresses. */
export function guardedLookup(allowPrivate: boolean, resolve: Resolver): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    resolveChecked(hostname, allowPrivate, resolve, options.family === "IPv4" ? 4 : options.family === "IPv6" ? 6 : options.family || undefined).then(
      (addresses) => {
        // Node asks for every address when it races families (autoSelectFamily, RFC 8305).
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, "", 0),
    );
  };
}

/**
 * Registration-time check: http(s) only, and (unless allowPrivate) a host that is, or resolves
 * only to, public addresses. Throws GatewayError("bad_request", field "url").
 */
export async function checkWebhookUrl(raw: string, allowPrivate: boolean, resolve: Resolver = systemResolver): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new GatewayError("bad_request", "url must be an absolute http:// or https:// URL", { field: "url" });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new GatewayError("bad_request", `url must use http or https, not ${url.protocol.replace(/:$/, "")}`, { field: "url" });
  }
  if (allowPrivate) return url;
  try {
    await resolveChecked(hostOf(url), false, resolve);
  } catch (e) {
    if (e instanceof ForbiddenAddressError) throw new GatewayError("bad_request", `url refused: ${e.message}`, { field: "url" });
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    throw new GatewayError("bad_request", `url host ${hostOf(url)} could not be resolved (${code})`, { field: "url", cause: e });
  }
  return url;
}
