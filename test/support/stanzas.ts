// The stanzas integration tests exchange with the gateway: a chat message as a client sends it, and
// the parts of a message or an error reply (RFC 6120 §8.3) that tests assert on.
import { xml, type StanzaElement } from "./xmpp-client.js";

/** RFC 6120's namespace of the stanza error conditions and their text. */
export const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
/** XEP-0066 out-of-band data: how a client shares a file's URL. */
export const OOB = "jabber:x:oob";

let chatSeq = 0;

/**
 * A chat message as a client sends it to `to`: `body` (none when undefined), a receipt request
 * (XEP-0184) when `receipt`, then `children`. Without an id it gets a fresh one (`m1`, `m2`, …).
 */
export function chat(to: string, body: string | undefined, extra: { id?: string; receipt?: boolean; children?: StanzaElement[] } = {}): StanzaElement {
  return xml(
    "message",
    { to, type: "chat", id: extra.id ?? `m${++chatSeq}` },
    body === undefined ? undefined : xml("body", {}, body),
    extra.receipt ? xml("request", { xmlns: "urn:xmpp:receipts" }) : undefined,
    ...(extra.children ?? []),
  );
}

/** Matches the error reply to the message with this id. */
export function isErrorFor(id: string): (el: StanzaElement) => boolean {
  return (el) => el.name === "message" && el.attrs.type === "error" && el.attrs.id === id;
}

/** The defined condition of an error reply (`service-unavailable`, …); undefined when there is none. */
export const errorCondition = (el: StanzaElement): string | undefined =>
  el
    .getChild("error")
    ?.getChildElements()
    .find((c) => c.getNS() === STANZAS && c.name !== "text")?.name;

/** The error's type (`cancel`, `wait`, `modify`, `auth`); undefined when there is no error. */
export const errorType = (el: StanzaElement): string | undefined => el.getChild("error")?.attrs.type;

/** The error's human-readable text; "" when there is none. */
export const errorText = (el: StanzaElement): string => el.getChild("error")?.getChildText("text", STANZAS) ?? "";

/** A message's body; "" when it has none. */
export const bodyOf = (el: StanzaElement): string => el.getChildText("body") ?? "";

/** The URLs of a message's out-of-band attachments, in order. */
export const oobUrls = (el: StanzaElement): string[] => el.getChildren("x", OOB).map((x) => x.getChildText("url") ?? "");
