// What a JID on the gateway's domain stands for, as the person asking may see it.
import { parseContactLocalpart, type ContactAddress } from "../core/model/addresses.js";
import type { WebhookStore } from "../core/ports.js";
import { isAllowed } from "../core/flows/webhook-out.js";
import { GatewayError } from "../errors.js";

/**
 * What a contact localpart stands for, as seen by `asker` (a bare JID). A webhook target exists for
 * those its allow list names; to anyone else it does not (its existence is not theirs to learn).
 * Throws a GatewayError (jid-malformed, item-not-found) saying what a contact looks like.
 */
export type ContactResolver = (local: string, asker: string) => Promise<ContactAddress>;

export function contactResolver(webhooks: Pick<WebhookStore, "get">): ContactResolver {
  return async (local, asker) => {
    const addr = parseContactLocalpart(local);
    if (addr.kind !== "webhook") return addr;
    const target = await webhooks.get(addr.name);
    if (!target || !isAllowed(target.allow, asker)) throw new GatewayError("not_found", `There is no contact '${local}' on this gateway; phone numbers look like +15552223333.`);
    return addr;
  };
}
