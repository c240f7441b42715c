// Every stanza the gateway sends is built here, with xml() (never template strings).
import xml, { type Element } from "@xmpp/xml";
import type { XmppDelivery } from "../core/model/message.js";
import type { StanzaErrorType } from "../errors.js";

export const NS = {
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
  discoInfo: "http://jabber.org/protocol/disco#info",
  discoItems: "http://jabber.org/protocol/disco#items",
  gateway: "jabber:iq:gateway",
  ping: "urn:xmpp:ping",
  version: "jabber:iq:version",
  receipts: "urn:xmpp:receipts",
  oob: "jabber:x:oob",
  delay: "urn:xmpp:delay",
  chatStates: "http://jabber.org/protocol/chatstates",
  omemo: "eu.siacs.conversations.axolotl",
  omemo2: "urn:xmpp:omemo:2",
  openpgp: "urn:xmpp:openpgp:0",
  legacyPgp: "jabber:x:encrypted",
  eme: "urn:xmpp:eme:0",
  fallback: "urn:xmpp:fallback:0",
  register: "jabber:iq:register",
  commands: "http://jabber.org/protocol/commands",
  nick: "http://jabber.org/protocol/nick",
  correct: "urn:xmpp:message-correct:0",
  reactions: "urn:xmpp:reactions:0",
  retract: "urn:xmpp:message-retract:1",
  retractOld: "urn:xmpp:message-retract:0",
  fasten: "urn:xmpp:fasten:0",
} as const;

/**
 * Largest delivery written to the server, in bytes. Prosody closes a component stream that sends a
 * stanza over 512 KiB (component_stanza_size_limit); the largest legitimate delivery (10,000
 * characters of text and 10 media links of 2,048, every character escaped) is about 310 KB.
 */
export const MAX_DELIVERY_BYTES = 400 * 1024;

/** RFC 6120 §8.3: `<error type><condition/><text xml:lang='en'>…</text></error>`. */
export function errorElement(type: StanzaErrorType, condition: string, text?: string): Element {
  return xml("error", { type }, xml(condition, { xmlns: NS.stanzas }), text ? xml("text", { xmlns: NS.stanzas, "xml:lang": "en" }, text) : undefined);
}

/** An error reply to a stanza we received: same name and id, addresses swapped, original children dropped. */
export function errorReply(original: Element, type: StanzaErrorType, condition: string, text: string): Element {
  const { name, attrs } = original;
  return xml(name, { type: "error", id: attrs.id, from: attrs.to, to: attrs.from }, errorElement(type, condition, text));
}

/** Delivery toward a user: a chat message, a receipt, or an error reply to a message they sent. */
export function deliveryStanza(item: XmppDelivery, opts: { domain: string; late: boolean; now?: number }): Element {
  switch (item.kind) {
    case "chat":
      return xml(
        "message",
        { type: item.type ?? "chat", from: item.from, to: item.to, id: item.id },
        item.subject ? xml("subject", {}, item.subject) : undefined,
        xml("body", {}, item.body),
        ...item.mediaUrls.map((url) => xml("x", { xmlns: NS.oob }, xml("url", {}, url))),
        // XEP-0203: the time the SMS reached us, when it is delivered late.
        opts.late ? xml("delay", { xmlns: NS.delay, from: opts.domain, stamp: new Date(item.acceptedAt).toISOString() }) : undefined,
        xml("origin-id", { xmlns: "urn:xmpp:sid:0", id: item.id }),
      );
    case "receipt":
      // XEP-0184 §5: the receipt carries its own id; <received id> names the original.
      return xml("message", { from: item.from, to: item.to, id: `rcpt-${item.id}` }, xml("received", { xmlns: NS.receipts, id: item.receiptFor }));
    case "error":
      return xml("message", { type: "error", from: item.from, to: item.to, id: item.replyTo }, errorElement(item.type, item.condition, item.text));
    case "subscribe":
      // XEP-0172 §4.2: a nickname may ride in a subscription request (clients prefill the contact's name).
      return presence(item.from, item.to, "subscribe", [xml("nick", { xmlns: NS.nick }, item.nick)], item.id);
  }
}

export function presence(from: string, to: string, type?: string, children: Element[] = [], id?: string): Element {
  return xml("presence", { from, to, ...(type ? { type } : {}), ...(id ? { id } : {}) }, ...children);
}
