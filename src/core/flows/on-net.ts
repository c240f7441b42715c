// On-net texts: when both numbers of a conversation are linked on this gateway, the text is delivered
// over XMPP as if it had arrived by SMS (introduction, keywords and all), with no provider call.
import type { ContactEvents } from "./contact-events.js";
import type { Delivery } from "../ports.js";

/** A text between two numbers linked on this gateway. */
export interface OnNetText {
  id: string;
  /** The sender's number. */
  from: string;
  /** The recipient's number. */
  to: string;
  /** The recipient's bare JID. */
  jid: string;
  body: string;
  mediaUrls: string[];
}

export function createOnNet(deps: { domain: string; delivery: Pick<Delivery, "enqueueToXmpp">; contacts: ContactEvents; log: { info(o: object, m: string): void } }) {
  return async function deliverOnNet(t: OnNetText): Promise<void> {
    const acceptedAt = Date.now();
    await deps.contacts.introduce({ id: t.id, jid: t.jid, senderLocal: t.from, rawFrom: t.from });
    // Like an inbound MMS: the links in the body too, for clients that do not render OOB.
    const body = [t.body, ...t.mediaUrls].filter((s) => s.length > 0).join("\n");
    await deps.delivery.enqueueToXmpp({ kind: "chat", id: t.id, from: `${t.from}@${deps.domain}`, to: t.jid, body, mediaUrls: t.mediaUrls, acceptedAt });
    await deps.contacts.consent({ id: t.id, ourNumber: t.to, theirNumber: t.from, body: t.body, jid: t.jid, acceptedAt });
    deps.log.info({ msgId: t.id }, "on-net text queued toward XMPP");
  };
}
