// Who may use the gateway (ALLOWED_DOMAINS). A component's domain is reachable from every server on
// the federated network, so anything that can cost money or reach a bot is for the served domains only.
// The one place that decides it, and what each face answers a JID it does not serve: the XMPP face
// (sending, registering, commands), the admin API's link, and the message-in API's recipient.
import { GatewayError } from "../../errors.js";

export interface AccessPolicy {
  /** Whether the bare JID's domain is served ("*" serves every domain). */
  allows(bareJid: string): boolean;
  /** The served domains, as configured ("*" for all). */
  readonly domains: readonly string[];
  /** XMPP: a user of another server sends, registers or runs a command (auth/forbidden, saying why); undefined when served. */
  userRefused(bareJid: string): GatewayError | undefined;
  /** Admin API: linking a JID of another server (400 on params.jid); undefined when served. */
  linkRefused(bareJid: string): GatewayError | undefined;
  /** Message-in API: a recipient on another server (403 on body.to); undefined when served. */
  recipientRefused(bareJid: string): GatewayError | undefined;
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
  const allows = (bareJid: string) => all || served.has(domainOf(bareJid));
  return {
    domains: [...served],
    allows,
    userRefused: (bareJid) =>
      allows(bareJid)
        ? undefined
        : new GatewayError(
            "forbidden",
            `This gateway serves users of ${list} only; ${domainOf(bareJid) || "your server"} is not one of them, so it cannot send texts, register or reach its contacts for you.`,
          ),
    linkRefused: (bareJid) =>
      allows(bareJid)
        ? undefined
        : new GatewayError("bad_request", `params.jid: ${bareJid} is not on a domain this gateway serves (ALLOWED_DOMAINS: ${list}); it could not use the number.`, { field: "params.jid" }),
    recipientRefused: (bareJid) =>
      allows(bareJid) ? undefined : new GatewayError("forbidden", `${bareJid} is not a user of a domain this gateway serves (${list}); messages go to those users only.`, { field: "body.to" }),
  };
}
