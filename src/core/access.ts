// Who may use the gateway (ALLOWED_DOMAINS). A component's domain is reachable from every server on
// the federated network, so anything that can cost money or reach a bot is for the served domains only.

export interface AccessPolicy {
  /** Whether the bare JID's domain is served ("*" serves every domain). */
  allows(bareJid: string): boolean;
  /** The sentence a refused JID reads. */
  refusal(bareJid: string): string;
  /** The served domains, as configured ("*" for all). */
  readonly domains: readonly string[];
}

/** The default: the parent of the component's domain (sms.example.com → example.com). */
export function parentDomain(componentDomain: string): string {
  const dot = componentDomain.indexOf(".");
  return dot > 0 && dot < componentDomain.length - 1 ? componentDomain.slice(dot + 1) : componentDomain;
}

export function createAccessPolicy(domains: readonly string[]): AccessPolicy {
  const all = domains.includes("*");
  const served = new Set(domains.map((d) => d.toLowerCase()));
  const domainOf = (bareJid: string) => bareJid.slice(bareJid.lastIndexOf("@") + 1).toLowerCase();
  const list = [...served].join(", ");
  return {
    domains: [...served],
    allows: (bareJid) => all || served.has(domainOf(bareJid)),
    refusal: (bareJid) =>
      `This gateway serves users of ${list} only; ${domainOf(bareJid) || "your server"} is not one of them, so it cannot send texts, register or reach its contacts for you.`,
  };
}
