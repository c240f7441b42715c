// Presence toward contact JIDs (RFC 6121): a subscription request is approved at once with the contact's
// presence, a probe answered, an unsubscribe acknowledged; the rest needs no answer. An address that is
// no contact gets its error for the requests that expect an answer.
import type { Element } from "@xmpp/xml";
import type { IncomingContext } from "@xmpp/component";
import type { ContactResolver } from "./contacts.js";
import { errorReplyFor } from "./errors.js";
import { presence } from "./stanzas.js";

export function presenceHandler(deps: { contactFor: ContactResolver; send(el: Element): Promise<unknown> }) {
  return async function onPresence(ctx: IncomingContext): Promise<void> {
    if (!ctx.from || !ctx.to || ctx.type === "error") return;
    const from = ctx.to.bare().toString();
    const to = ctx.from.bare().toString();
    if (ctx.to.local) {
      try {
        await deps.contactFor(ctx.to.local, to);
      } catch (err) {
        const reply = ctx.type === "subscribe" || ctx.type === "probe" ? errorReplyFor(ctx.stanza, err) : undefined;
        if (reply) await deps.send(reply);
        return;
      }
    }
    switch (ctx.type) {
      case "subscribe":
        await deps.send(presence(from, to, "subscribed"));
        await deps.send(presence(from, ctx.from.toString()));
        return;
      case "probe":
        await deps.send(presence(from, ctx.from.toString()));
        return;
      case "unsubscribe":
        await deps.send(presence(from, to, "unsubscribed"));
        return;
      default:
        return; // available/unavailable/subscribed/unsubscribed need no answer
    }
  };
}
