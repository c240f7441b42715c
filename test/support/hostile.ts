// Generators of hostile input (fast-check arbitraries), shared by the property tests, the hostile-input
// integration tests and the long fuzz run (fuzz/fuzz.ts): text with control and bidi characters and
// unpaired surrogates, phone numbers and JIDs that almost parse, stanzas with unexpected children, and
// Twilio webhook forms with missing, repeated, extra and wrongly typed fields.
import fc from "fast-check";
import { xmlSafe } from "../../src/xmpp/stream-guard.js";

// ---------------------------------------------------------------------------------------------
// text

/** Any UTF-16 code unit, lone surrogates and controls included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Pieces that break naive code: controls, bidi overrides, zero-width and joiners, non-characters,
 *  half surrogate pairs, XML and URL syntax, command words, prototype keys, number-like strings. */
export const SPECIAL_PIECES = [
  "\u0000",
  "\u0001",
  "\u0008",
  "\u000b",
  "\u000c",
  "\u001b",
  "\u007f",
  "\u0085",
  "\u00a0",
  "\u200b",
  "\u200c",
  "\u200d",
  "\u200e",
  "\u200f",
  "\u202a",
  "\u202b",
  "\u202c",
  "\u202d",
  "\u202e",
  "\u2066",
  "\u2067",
  "\u2068",
  "\u2069",
  "\u2028",
  "\u2029",
  "\ufeff",
  "\ufffd",
  "\ufffe",
  "\uffff",
  "\ud800",
  "\udbff",
  "\udc00",
  "\udfff",
  "\ud83d",
  "\ude00",
  "😀",
  "👍🏽",
  "👨‍👩‍👧",
  "🏳️‍🌈",
  "é",
  "ç",
  "€",
  "ß",
  "İ",
  "ﬀ",
  "e\u0301",
  "Ω",
  "中文",
  "العربية",
  "עברית",
  "&",
  "<",
  ">",
  "'",
  '"',
  "]]>",
  "<![CDATA[",
  "&amp;",
  "&#0;",
  "&#x1F600;",
  "<body>",
  "</message>",
  "%00",
  "%",
  "%ZZ",
  "\\",
  "/",
  "@",
  "+",
  "~",
  "*@",
  "#",
  "?",
  "=",
  "&x=1",
  " ",
  "\t",
  "\n",
  "\r\n",
  "\r",
  "STOP",
  "stop",
  "START",
  "HELP",
  "help",
  "status",
  "unregister",
  "register",
  "UNSTOP",
  "YES",
  "+15552223333",
  "+1555",
  "+",
  "72975",
  "+15005550001",
  "+15005550009",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "null",
  "undefined",
  "NaN",
  "Infinity",
  "-1",
  "0",
  "1e309",
  "0x10",
  "9007199254740993",
  "{}",
  "[]",
  '{"a":1}',
  "true",
] as const;
export const specialPiece = fc.constantFrom(...SPECIAL_PIECES);

/** Hostile text, at most `maxUnits` pieces (each a code unit, a grapheme or a special piece). */
export function hostileText(maxUnits = 40): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: fc.oneof(codeUnit, specialPiece, fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 })), maxLength: maxUnits }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: maxUnits }) },
    { weight: 1, arbitrary: fc.string({ maxLength: maxUnits }) },
    { weight: 1, arbitrary: specialPiece.map(String) },
  );
}

/** A long text: a piece (default: hostile text) repeated to `min`..`max` UTF-16 units. */
export function longText(min: number, max: number, piece: fc.Arbitrary<string> = hostileText(6)): fc.Arbitrary<string> {
  return fc.tuple(piece, fc.integer({ min, max })).map(([s, n]) => {
    const piece = s.length > 0 ? s : "x";
    return piece.repeat(Math.ceil(n / piece.length)).slice(0, n);
  });
}

/** Text, mostly short, sometimes long (up to `longMax` units). */
export function anyText(longMax = 20_000): fc.Arbitrary<string> {
  return fc.oneof({ weight: 8, arbitrary: hostileText() }, { weight: 1, arbitrary: longText(1500, longMax) });
}

// ---------------------------------------------------------------------------------------------
// numbers and addresses

/** Strings that look more or less like phone numbers. */
export const phoneLike: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("+15552223333", "+447700900123", "+33612345678", "+15005550001", "+15005550004", "+8613800138000", "+999", "+1", "+"),
  fc.stringMatching(/^\+[0-9]{1,18}$/),
  fc.stringMatching(/^[0-9]{1,12}$/),
  fc.stringMatching(/^\+?[0-9 ().-]{1,24}$/),
  fc.tuple(fc.stringMatching(/^\+[0-9]{6,15}$/), hostileText(4)).map(([a, b]) => a + b),
  hostileText(20),
);

/** Localparts a contact JID on the gateway's domain might carry (no '@' or '/': those split a JID). */
export const contactLocal: fc.Arbitrary<string> = fc
  .oneof(phoneLike, fc.stringMatching(/^[0-9]{3,8}$/), fc.stringMatching(/^~[a-z0-9._-]{0,20}$/), fc.stringMatching(/^[a-z][a-z0-9._-]{0,70}$/), fc.constant(""), hostileText(30))
  .map((s) => s.replace(/[@/]/g, ""));

/** Strings that look more or less like JIDs. */
export const jidLike: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("alice@example.com", "Alice@Example.COM/Phone", "example.com", "a@b@c", "@example.com", "alice@", "/res", "alice@example.com/", "*@example.com", ""),
  fc.tuple(hostileText(12), hostileText(12), hostileText(8), fc.boolean(), fc.boolean()).map(([l, d, r, at, slash]) => `${l}${at ? "@" : ""}${d}${slash ? `/${r}` : ""}`),
  hostileText(40),
  longText(1000, 5000),
);

// ---------------------------------------------------------------------------------------------
// stanzas: a neutral tree, built into an element by whichever xml() the caller uses

export interface XNode {
  name: string;
  attrs: Record<string, string>;
  children: (XNode | string)[];
}

const NS = {
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
  discoInfo: "http://jabber.org/protocol/disco#info",
  discoItems: "http://jabber.org/protocol/disco#items",
  gateway: "jabber:iq:gateway",
  ping: "urn:xmpp:ping",
  version: "jabber:iq:version",
  register: "jabber:iq:register",
  commands: "http://jabber.org/protocol/commands",
  data: "jabber:x:data",
  receipts: "urn:xmpp:receipts",
  oob: "jabber:x:oob",
  chatStates: "http://jabber.org/protocol/chatstates",
  correct: "urn:xmpp:message-correct:0",
  reactions: "urn:xmpp:reactions:0",
  retract: "urn:xmpp:message-retract:1",
  retractOld: "urn:xmpp:message-retract:0",
  fasten: "urn:xmpp:fasten:0",
  fallback: "urn:xmpp:fallback:0",
  omemo: "eu.siacs.conversations.axolotl",
  omemo2: "urn:xmpp:omemo:2",
  eme: "urn:xmpp:eme:0",
  sid: "urn:xmpp:sid:0",
  delay: "urn:xmpp:delay",
  nick: "http://jabber.org/protocol/nick",
} as const;

const node = (name: string, attrs: Record<string, string> = {}, ...children: (XNode | string | undefined)[]): XNode => ({
  name,
  attrs,
  children: children.filter((c): c is XNode | string => c !== undefined),
});

/** Options of the stanza generators. */
export interface StanzaGenOptions {
  /** The gateway's domain (stanzas are addressed to it or to contacts on it). */
  domain: string;
  /** Text generator: hostileText for direct feeding, xml-safe text through a real server. */
  text: fc.Arbitrary<string>;
  /** Upper bound of long bodies, in UTF-16 units. */
  longMax: number;
  /** Turns a generated localpart into one the stanza may carry in `to` (default serverLocal). */
  local?: (s: string) => string;
}

/**
 * A localpart as a client may write it: no spaces, controls or characters a localpart forbids. The
 * server still refuses some (nodeprep: unassigned code points, bidi controls): it answers those itself.
 */
export const serverLocal = (l: string): string => xmlSafe(l).replace(/[\s"&'/:<>@\ufffd]/g, "");

/**
 * A localpart as a server delivers it to the component: already prepared (RFC 6122), so handed to the
 * component directly only such localparts make sense (the gateway's answers come from that address,
 * and the server would not route them from another). Hostile localparts are the property tests' part.
 */
export const deliveredLocal = (l: string): string => l.toLowerCase().replace(/[^a-z0-9+~._\-éüßçñ中文]/gu, "");

const ELEMENT_NAMES = ["body", "subject", "thread", "x", "query", "foo", "html", "data", "item", "field", "value", "url", "error", "a-b", "z9"] as const;
const NAMESPACES = [...Object.values(NS), "urn:example:unknown", "jabber:client", "", "http://jabber.org/protocol/xhtml-im"] as const;

/** Random, possibly deep or wide, element with random namespace and text. */
function unknownElement(o: StanzaGenOptions): fc.Arbitrary<XNode> {
  const head = fc.tuple(fc.constantFrom(...ELEMENT_NAMES), fc.constantFrom(...NAMESPACES), fc.option(o.text, { nil: undefined }));
  const leaf = head.map(([name, xmlns, text]) => node(name, xmlns ? { xmlns } : {}, text));
  const { tree } = fc.letrec<{ tree: XNode }>((tie) => ({
    tree: fc.oneof(
      { maxDepth: 4, depthIdentifier: "unknown" },
      leaf,
      fc.tuple(head, fc.array(tie("tree"), { maxLength: 3 })).map(([[name, xmlns, text], kids]) => node(name, xmlns ? { xmlns } : {}, text, ...kids)),
    ),
  }));
  return fc.oneof(
    { weight: 6, arbitrary: tree },
    // deep: 20..300 levels
    {
      weight: 1,
      arbitrary: fc.integer({ min: 20, max: 300 }).map((depth) => {
        let n = node("x", { xmlns: "urn:example:deep" }, "bottom");
        for (let i = 0; i < depth; i++) n = node("x", {}, n);
        return n;
      }),
    },
    // wide: 50..2000 empty children
    { weight: 1, arbitrary: fc.integer({ min: 50, max: 2000 }).map((n) => node("x", { xmlns: "urn:example:wide" }, ...Array.from({ length: n }, () => node("i")))) },
  );
}

function dataForm(o: StanzaGenOptions): fc.Arbitrary<XNode> {
  const field = fc
    .tuple(fc.oneof(fc.constantFrom("FORM_TYPE", "account", "token", "number", "phone", "sid", "__proto__", ""), o.text), fc.array(o.text, { maxLength: 3 }))
    .map(([v, values]) => node("field", v === "" ? {} : { var: v }, ...values.map((t) => node("value", {}, t))));
  return fc
    .tuple(fc.constantFrom("submit", "form", "cancel", "result", ""), fc.array(field, { maxLength: 6 }), fc.constantFrom(NS.data, "urn:example:not-data"))
    .map(([type, fields, xmlns]) => node("x", { xmlns, ...(type ? { type } : {}) }, ...fields));
}

function messageChild(o: StanzaGenOptions): fc.Arbitrary<XNode> {
  const t = o.text;
  const id = fc.oneof(fc.constant("m1"), t);
  const url = fc.oneof(fc.constantFrom("https://up.example/f/a.jpg", "http://x", "ftp://x/y", "javascript:alert(1)", "https://up.example/" + "a".repeat(3000)), t);
  return fc.oneof(
    { weight: 8, arbitrary: fc.oneof({ weight: 6, arbitrary: t }, { weight: 1, arbitrary: longText(1500, o.longMax, o.text) }).map((b) => node("body", {}, b)) },
    { weight: 1, arbitrary: t.map((b) => node("body", { "xml:lang": "xx" }, b)) },
    { weight: 1, arbitrary: t.map((s) => node("subject", {}, s)) },
    { weight: 1, arbitrary: t.map((s) => node("thread", {}, s)) },
    { weight: 2, arbitrary: fc.constant(node("request", { xmlns: NS.receipts })) },
    { weight: 1, arbitrary: id.map((i) => node("received", { xmlns: NS.receipts, id: i })) },
    { weight: 2, arbitrary: fc.array(url, { maxLength: 3 }).map((us) => node("x", { xmlns: NS.oob }, ...us.map((u) => node("url", {}, u)))) },
    { weight: 1, arbitrary: fc.constantFrom("active", "composing", "paused", "inactive", "gone").map((s) => node(s, { xmlns: NS.chatStates })) },
    { weight: 1, arbitrary: fc.constantFrom(NS.omemo, NS.omemo2).map((xmlns) => node("encrypted", { xmlns }, node("payload", {}, "AAAA"))) },
    { weight: 1, arbitrary: fc.constant(node("encryption", { xmlns: NS.eme, namespace: NS.omemo })) },
    { weight: 1, arbitrary: id.map((i) => node("replace", { xmlns: NS.correct, id: i })) },
    { weight: 1, arbitrary: fc.tuple(id, fc.array(t, { maxLength: 4 })).map(([i, rs]) => node("reactions", { xmlns: NS.reactions, id: i }, ...rs.map((r) => node("reaction", {}, r)))) },
    { weight: 1, arbitrary: fc.tuple(id, fc.constantFrom(NS.retract, NS.retractOld)).map(([i, xmlns]) => node("retract", { xmlns, id: i })) },
    {
      weight: 1,
      arbitrary: fc.tuple(id, fc.boolean()).map(([i, r]) => node("apply-to", { xmlns: NS.fasten, id: i }, r ? node("retract", { xmlns: NS.retractOld }) : node("external", { xmlns: "urn:example" }))),
    },
    { weight: 1, arbitrary: fc.constant(node("fallback", { xmlns: NS.fallback })) },
    { weight: 1, arbitrary: id.map((i) => node("origin-id", { xmlns: NS.sid, id: i })) },
    { weight: 1, arbitrary: t.map((s) => node("delay", { xmlns: NS.delay, stamp: s })) },
    { weight: 1, arbitrary: t.map((s) => node("nick", { xmlns: NS.nick }, s)) },
    { weight: 1, arbitrary: fc.constantFrom("item-not-found", "service-unavailable", "remote-server-timeout").map((c) => node("error", { type: "cancel" }, node(c, { xmlns: NS.stanzas }))) },
    { weight: 2, arbitrary: unknownElement(o) },
  );
}

function iqPayload(o: StanzaGenOptions): fc.Arbitrary<XNode> {
  const t = o.text;
  const nodeAttr = fc.oneof(fc.constantFrom(NS.commands, "register", "unregister", "status", "help", ""), t);
  const commandNode = fc.oneof(fc.constantFrom("register", "unregister", "status", "help", "nope"), t);
  const action = fc.oneof(fc.constantFrom("execute", "complete", "next", "prev", "cancel", ""), t);
  return fc.oneof(
    { weight: 2, arbitrary: fc.option(nodeAttr, { nil: undefined }).map((n) => node("query", { xmlns: NS.discoInfo, ...(n !== undefined ? { node: n } : {}) })) },
    { weight: 2, arbitrary: fc.option(nodeAttr, { nil: undefined }).map((n) => node("query", { xmlns: NS.discoItems, ...(n !== undefined ? { node: n } : {}) })) },
    { weight: 2, arbitrary: fc.option(fc.oneof(phoneLike, t), { nil: undefined }).map((p) => node("query", { xmlns: NS.gateway }, p === undefined ? undefined : node("prompt", {}, p))) },
    { weight: 1, arbitrary: fc.constant(node("ping", { xmlns: NS.ping })) },
    { weight: 1, arbitrary: fc.constant(node("query", { xmlns: NS.version })) },
    { weight: 1, arbitrary: fc.constant(node("query", { xmlns: NS.register })) },
    { weight: 1, arbitrary: fc.boolean().map((extra) => node("query", { xmlns: NS.register }, node("remove"), extra ? node("username", {}, "x") : undefined)) },
    { weight: 2, arbitrary: dataForm(o).map((x) => node("query", { xmlns: NS.register }, x)) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(commandNode, fc.option(action, { nil: undefined }), fc.option(t, { nil: undefined }), fc.option(dataForm(o), { nil: undefined }))
        .map(([n, a, sid, x]) => node("command", { xmlns: NS.commands, node: n, ...(a !== undefined ? { action: a } : {}), ...(sid !== undefined ? { sessionid: sid } : {}) }, x)),
    },
    { weight: 2, arbitrary: unknownElement(o) },
  );
}

export type StanzaKind = "message" | "presence" | "iq";

export interface GeneratedStanza {
  kind: StanzaKind;
  /** type attribute, "" for none */
  type: string;
  /** the local part of `to` ("" for the gateway's domain itself) */
  toLocal: string;
  tree: XNode;
}

/** A stanza from a user to the gateway's domain or a contact on it (no `from`: the sender sets it). */
export function stanza(o: StanzaGenOptions): fc.Arbitrary<GeneratedStanza> {
  const to = fc
    .tuple(
      fc.oneof({ weight: 3, arbitrary: contactLocal.map(o.local ?? serverLocal) }, { weight: 1, arbitrary: fc.constant("") }),
      fc.option(fc.stringMatching(/^[A-Za-z0-9]{1,8}$/), { nil: undefined, freq: 4 }),
    )
    .map(([local, res]) => ({ local, jid: `${local ? `${local}@` : ""}${o.domain}${res ? `/${res}` : ""}` }));
  const extraAttrs = fc.dictionary(fc.constantFrom("xml:lang", "foo", "data-x"), o.text, { maxKeys: 2 });
  const message = fc
    .tuple(to, fc.constantFrom("chat", "normal", "headline", "groupchat", "error", "", "bogus"), fc.array(messageChild(o), { maxLength: 6 }), extraAttrs)
    .map(([dest, type, kids, extra]): GeneratedStanza => ({ kind: "message", type, toLocal: dest.local, tree: node("message", { ...extra, to: dest.jid, ...(type ? { type } : {}) }, ...kids) }));
  const presence = fc
    .tuple(to, fc.constantFrom("subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe", "unavailable", "error", "", "bogus"), fc.array(messageChild(o), { maxLength: 2 }))
    .map(([dest, type, kids]): GeneratedStanza => ({ kind: "presence", type, toLocal: dest.local, tree: node("presence", { to: dest.jid, ...(type ? { type } : {}) }, ...kids) }));
  const iq = fc
    .tuple(
      to,
      fc.oneof({ weight: 8, arbitrary: fc.constantFrom("get", "set") }, { weight: 1, arbitrary: fc.constantFrom("result", "error", "", "bogus") }),
      fc.oneof({ weight: 6, arbitrary: iqPayload(o).map((p) => [p]) }, { weight: 1, arbitrary: fc.array(iqPayload(o), { maxLength: 3 }) }),
    )
    .map(([dest, type, kids]): GeneratedStanza => ({ kind: "iq", type, toLocal: dest.local, tree: node("iq", { to: dest.jid, ...(type ? { type } : {}) }, ...kids) }));
  return fc.oneof({ weight: 5, arbitrary: message }, { weight: 2, arbitrary: presence }, { weight: 4, arbitrary: iq });
}

/** The tree with `f` applied to every text and attribute value. */
export function mapText(n: XNode, f: (s: string) => string): XNode {
  return {
    name: n.name,
    attrs: Object.fromEntries(Object.entries(n.attrs).map(([k, v]) => [k, f(v)])),
    children: n.children.map((c) => (typeof c === "string" ? f(c) : mapText(c, f))),
  };
}

/** Stanzas a real XMPP server would forward: text limited to the characters XML allows. */
export function serverStanza(domain: string, longMax = 20_000): fc.Arbitrary<GeneratedStanza> {
  return stanza({ domain, text: hostileText().map(xmlSafe), longMax }).map((g) => ({ ...g, tree: mapText(g.tree, xmlSafe) }));
}

/** Stanzas with anything in them, for feeding the component directly (no server in between to clean them). */
export function rawStanza(domain: string, longMax = 20_000): fc.Arbitrary<GeneratedStanza> {
  return stanza({ domain, text: hostileText(), longMax, local: deliveredLocal });
}

type XmlFn<E> = (name: string, attrs?: Record<string, string>, ...children: (E | string)[]) => E;

/** Builds the tree with the caller's xml() (the client's for sending, @xmpp/xml for direct feeding). */
export function build<E>(n: XNode, xml: XmlFn<E>): E {
  return xml(n.name, n.attrs, ...n.children.map((c) => (typeof c === "string" ? c : build(c, xml))));
}

/** Serialized size of the tree in bytes, roughly (escaping ignored: an upper bound is not needed). */
export function treeSize(n: XNode): number {
  let size = n.name.length * 2 + 5;
  for (const [k, v] of Object.entries(n.attrs)) size += k.length + v.length * 3 + 4;
  for (const c of n.children) size += typeof c === "string" ? c.length * 3 : treeSize(c);
  return size;
}

// ---------------------------------------------------------------------------------------------
// Twilio webhook forms

export type FormValue = string | string[];

/** An inbound-SMS form after hostile edits: fields dropped, repeated, added, replaced by junk. */
export function mutatedForm(base: Record<string, string>, opts: { text?: fc.Arbitrary<string>; longMax?: number } = {}): fc.Arbitrary<Record<string, FormValue>> {
  const keys = Object.keys(base);
  const text = opts.text ?? hostileText();
  const junkValue = fc.oneof(
    { weight: 4, arbitrary: text },
    { weight: 2, arbitrary: fc.constantFrom("", "-1", "0", "1.5", "11", "1000000", "1e3", "NaN", "Infinity", "0x10", " 2", "99999999999999999999", "[object Object]") },
    { weight: 1, arbitrary: longText(1601, opts.longMax ?? 300_000) },
  );
  const edit = fc.oneof(
    fc.record({ op: fc.constant("drop" as const), key: fc.constantFrom(...keys) }),
    fc.record({ op: fc.constant("repeat" as const), key: fc.constantFrom(...keys), values: fc.array(junkValue, { minLength: 1, maxLength: 3 }) }),
    fc.record({
      op: fc.constant("set" as const),
      key: fc.oneof(fc.constantFrom(...keys, "NumMedia", "MediaUrl0", "MediaContentType0", "MediaUrl9", "MediaUrl10", "OptOutType", "ErrorCode", "MessageStatus", "AccountSid"), text),
      value: junkValue,
    }),
  );
  return fc.array(edit, { maxLength: 5 }).map((edits) => {
    const form: Record<string, FormValue> = { ...base };
    for (const e of edits) {
      if (e.op === "drop") delete form[e.key];
      else if (e.op === "repeat") form[e.key] = [String(form[e.key] ?? ""), ...e.values];
      else form[e.key] = e.value;
    }
    return form;
  });
}

/** application/x-www-form-urlencoded, repeated keys for arrays (as Twilio and qs "repeat" send them). */
export function encodeForm(form: Record<string, FormValue>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
  return p.toString();
}

/** Any JSON value, with hostile strings. */
export function hostileJson(text: fc.Arbitrary<string> = hostileText()): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    {
      weight: 1,
      arbitrary: fc.dictionary(
        fc.oneof(text, fc.constantFrom("to", "body", "text", "media", "type", "subject", "phone", "url", "allow", "secret", "__proto__")),
        fc.oneof(text, fc.jsonValue({ maxDepth: 2 }), fc.array(text, { maxLength: 12 })),
        { maxKeys: 6 },
      ),
    },
  );
}
