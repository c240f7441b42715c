// Property tests (fast-check) of what the gateway writes to and reads from the XMPP server: every
// stanza it renders is well-formed XML whatever the text (controls, non-characters, lone surrogates),
// the readers of incoming stanzas never throw, and the stream guard (src/xmpp/stream-guard.ts) keeps
// characters whole across socket reads, frames the stream into whole top-level elements however it is
// cut into reads (src/xmpp/stanza-framer.ts), drops a stanza over its size limit with one
// policy-violation answer while the link stays up, and survives unparsable input.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { StringDecoder } from "node:string_decoder";
import { test } from "node:test";
import fc from "fast-check";
import xml, { type Element } from "@xmpp/xml";
import type { Component } from "@xmpp/component";
import type { XmppDelivery } from "../../src/core/model/message.js";
import { readExtensions } from "../../src/xmpp/extensions.js";
import { readForm } from "../../src/xmpp/forms.js";
import { deliveryStanza, errorElement, errorReply, NS } from "../../src/xmpp/stanzas.js";
import { StanzaFramer } from "../../src/xmpp/stanza-framer.js";
import { guardStream, xmlSafe } from "../../src/xmpp/stream-guard.js";
import { anyText, build, hostileText, rawStanza, specialPiece } from "../support/hostile.js";

const RUNS = { numRuns: 300 };
const require = createRequire(import.meta.url);
type StreamParser = EventEmitter & { write(s: string): void; root: Element | null; cursor: Element | null };
const { Parser } = require("@xmpp/xml") as { Parser: new () => StreamParser };

/** Characters XML 1.0 forbids, as UTF-16 (the same set the guard replaces). */
// eslint-disable-next-line no-control-regex -- these are the characters to find
const INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Parses one serialized top-level element with the parser the gateway uses. */
function parseOne(s: string): Element {
  const p = new Parser();
  let out: Element | undefined;
  let error: unknown;
  p.on("element", (el: Element) => (out = el));
  p.on("error", (e: unknown) => (error = e));
  p.write(`<stream>${s}`);
  if (error) throw error;
  assert.ok(out, `no element parsed from ${s.slice(0, 200)}`);
  return out;
}

test("xmlSafe: removes exactly what XML forbids, keeps the length, is idempotent", () => {
  fc.assert(
    fc.property(anyText(3000), (s) => {
      const safe = xmlSafe(s);
      assert.equal(safe.length, s.length);
      assert.doesNotMatch(safe, INVALID);
      assert.equal(xmlSafe(safe), safe);
      if (!INVALID.test(s)) assert.equal(safe, s);
    }),
    RUNS,
  );
});

const jidText = hostileText(20);
const delivery: fc.Arbitrary<XmppDelivery> = fc.oneof(
  fc
    .record({
      kind: fc.constant("chat" as const),
      id: hostileText(30),
      from: jidText,
      to: jidText,
      body: anyText(5000),
      mediaUrls: fc.array(hostileText(30), { maxLength: 3 }),
      acceptedAt: fc.integer({ min: 0, max: 4_102_444_800_000 }),
      subject: fc.option(hostileText(), { nil: undefined }),
      type: fc.option(fc.constantFrom("chat" as const, "normal" as const, "headline" as const), { nil: undefined }),
    })
    .map((d) => JSON.parse(JSON.stringify(d)) as XmppDelivery),
  fc.record({ kind: fc.constant("receipt" as const), id: hostileText(), from: jidText, to: jidText, receiptFor: hostileText() }),
  fc.record({ kind: fc.constant("subscribe" as const), id: hostileText(), from: jidText, to: jidText, nick: hostileText() }),
  fc.record({
    kind: fc.constant("error" as const),
    id: hostileText(),
    from: jidText,
    to: jidText,
    replyTo: hostileText(),
    condition: fc.constantFrom("not-acceptable", "forbidden", "item-not-found"),
    type: fc.constantFrom("cancel" as const, "modify" as const, "wait" as const, "auth" as const),
    text: hostileText(),
  }),
);

test("deliveryStanza: any delivery, as written (xmlSafe), is well-formed and reads back as sent", () => {
  fc.assert(
    fc.property(delivery, fc.boolean(), (item, late) => {
      const el = deliveryStanza(item, { domain: "sms.example.com", late });
      const wire = xmlSafe(el.toString());
      assert.doesNotMatch(wire, INVALID);
      const back = parseOne(wire);
      assert.equal(back.name, el.name);
      assert.equal(back.attrs.to, xmlSafe(item.to));
      assert.equal(back.attrs.from, xmlSafe(item.from));
      if (item.kind === "chat") {
        assert.equal(back.getChildText("body"), xmlSafe(item.body));
        assert.deepEqual(
          back.getChildren("x", NS.oob).map((x) => x.getChildText("url")),
          item.mediaUrls.map(xmlSafe),
        );
      }
      if (item.kind === "error") assert.equal(back.getChild("error")?.getChildText("text", NS.stanzas), xmlSafe(item.text) || null);
    }),
    RUNS,
  );
});

test("errorReply: swaps the addresses, keeps the id, drops the original's children; well-formed", () => {
  fc.assert(
    fc.property(rawStanza("sms.example.com", 3000), hostileText(), hostileText(), (g, id, text) => {
      const original = build(g.tree, xml);
      original.attrs.id = id;
      original.attrs.from = "alice@example.com/phone";
      const reply = errorReply(original, "modify", "bad-request", text);
      assert.equal(reply.attrs.type, "error");
      assert.equal(reply.attrs.id, id);
      assert.equal(reply.attrs.to, "alice@example.com/phone");
      assert.equal(reply.attrs.from, original.attrs.to);
      assert.deepEqual(
        reply.getChildElements().map((c) => c.name),
        ["error"],
      );
      parseOne(xmlSafe(reply.toString()));
      const err = errorElement("cancel", "item-not-found", text);
      assert.ok(err.getChild("item-not-found", NS.stanzas));
    }),
    RUNS,
  );
});

test("readExtensions and readForm: never throw on any stanza; results are plain strings", () => {
  fc.assert(
    fc.property(rawStanza("sms.example.com", 3000), (g) => {
      const el = build(g.tree, xml);
      const ext = readExtensions(el);
      assert.equal(typeof ext.drop, "boolean");
      for (const r of ext.reactions ?? []) assert.equal(typeof r, "string");
      if (ext.replaces !== undefined) assert.equal(typeof ext.replaces, "string");
      if (ext.retracts !== undefined) assert.equal(typeof ext.retracts, "string");
      // every x:data form anywhere in it
      const forms: Element[] = [];
      const walk = (e: Element) => {
        if (e.name === "x") forms.push(e);
        for (const c of e.getChildElements()) walk(c);
      };
      walk(el);
      for (const x of [undefined, ...forms]) {
        const form = readForm(x);
        if (!form) continue;
        for (const [k, v] of Object.entries(form.values)) {
          assert.equal(typeof k, "string");
          assert.equal(typeof v, "string");
        }
        assert.equal(Object.getPrototypeOf(form.values), Object.prototype, "a field named __proto__ does not replace the prototype");
      }
    }),
    RUNS,
  );
});

// ---- the stream guard, on a stand-in for xmpp.js's connection (the same Parser the gateway uses)

interface FakeSocket {
  written: string[];
  destroyed: boolean;
  write(s: string, cb?: () => void): boolean;
  destroy(): void;
}

function fakeLink(maxStanzaBytes: number) {
  const conn = new EventEmitter() as EventEmitter & {
    socket: FakeSocket | null;
    parser: StreamParser | null;
    written: string[];
    write(s: string): Promise<void>;
    _onData(d: Buffer): void;
  };
  conn.written = [];
  conn.write = async (s: string) => void conn.written.push(s);
  // as xmpp.js's Connection: send() serializes and writes; Parser is the class the stream is read with
  Object.assign(conn, { Parser, send: (el: Element) => conn.write(el.toString()) });
  conn._onData = () => {
    throw new Error("replaced by the guard");
  };
  const warnings: unknown[] = [];
  guardStream(conn as unknown as Component, { maxStanzaBytes, log: { warn: (o: unknown) => void warnings.push(o) } as never });
  const elements: Element[] = [];
  const connect = () => {
    const socket: FakeSocket = {
      written: [],
      destroyed: false,
      write(s, cb) {
        this.written.push(s);
        cb?.();
        return true;
      },
      destroy() {
        this.destroyed = true;
      },
    };
    const parser = new Parser();
    // as xmpp.js does: elements are emitted by the connection; a parse error drops the parser
    parser.on("element", (el: Element) => {
      elements.push(el);
      conn.emit("element", el);
    });
    parser.on("error", () => {
      conn.parser = null;
    });
    conn.socket = socket;
    conn.parser = parser;
    return socket;
  };
  return { conn, elements, warnings, connect };
}

/** `bytes` cut at the given positions (sorted, deduplicated, inside the buffer), or every `at` bytes. */
function cut(bytes: Buffer, at: number[] | number): Buffer[] {
  const positions = typeof at === "number" ? Array.from({ length: Math.ceil(bytes.length / at) }, (_, i) => i * at) : at;
  const points = [...new Set(positions.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

const bodyText = fc.string({ unit: fc.oneof(specialPiece, fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 })), maxLength: 40 }).map(xmlSafe);

test("stream guard: characters split between socket reads arrive whole", () => {
  fc.assert(
    fc.property(fc.array(bodyText, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 30 }), (bodies, at) => {
      const { conn, elements, connect } = fakeLink(1 << 20);
      connect();
      const wire = `<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>${bodies.map((b, i) => xml("message", { id: String(i) }, xml("body", {}, b)).toString()).join("")}`;
      for (const chunk of cut(Buffer.from(wire, "utf8"), at)) conn._onData(chunk);
      assert.deepEqual(
        elements.map((e) => e.getChildText("body")),
        bodies,
      );
    }),
    RUNS,
  );
});

// ---- framing: whole top-level elements, whatever the reads

/** A generated element: attribute values and text hold what naive framing trips on ('>', '/', quotes). */
interface GenNode {
  name: string;
  attrs: [string, string, "'" | '"'][];
  children: (GenNode | { text: string; cdata: boolean })[];
}
const trickyPiece = fc.constantFrom(">", "/", "/>", "'", '"', "&", "<", "]]", "?>", "é", "😀", "中", " ", "\n", "a", "z9");
const trickyText = (maxLength: number) => fc.string({ unit: trickyPiece, maxLength });
const { node: genNode } = fc.letrec<{ node: GenNode; text: { text: string; cdata: boolean } }>((tie) => ({
  node: fc.record({
    name: fc.constantFrom("message", "iq", "presence", "body", "x", "a:b", "c-d"),
    attrs: fc.uniqueArray(fc.tuple(fc.constantFrom("id", "to", "from", "type", "xml:lang", "k"), trickyText(8), fc.constantFrom("'" as const, '"' as const)), { selector: (a) => a[0], maxLength: 4 }),
    children: fc.array(fc.oneof({ depthSize: "small", withCrossShrink: true }, tie("text"), tie("node")), { maxLength: 4 }),
  }),
  text: fc.record({ text: trickyText(16), cdata: fc.boolean() }),
}));

/**
 * Serialized as a server may legally write it, and as ltx does not: '>' and the other quote left raw in
 * attribute values, '>' raw in text, CDATA sections, either quote.
 */
function render(n: GenNode): string {
  const attrs = n.attrs
    .map(
      ([k, v, q]) =>
        ` ${k}=${q}${v
          .replace(/&/g, "&amp;")
          .replace(/</g, "&lt;")
          .replaceAll(q, q === "'" ? "&apos;" : "&quot;")}${q}`,
    )
    .join("");
  if (n.children.length === 0) return `<${n.name}${attrs}/>`;
  const inner = n.children.map((c) => ("name" in c ? render(c) : c.cdata ? `<![CDATA[${c.text.replaceAll("]]>", "]]&gt;")}]]>` : c.text.replace(/&/g, "&amp;").replace(/</g, "&lt;"))).join("");
  return `<${n.name}${attrs}>${inner}</${n.name}>`;
}

const STREAM_HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='sms.example.com'>";

/** What the parser makes of `wire` read at once, with no guard: the reference. */
function parseWhole(wire: string): string[] {
  const p = new Parser();
  const out: string[] = [];
  p.on("element", (el: Element) => out.push(el.toString()));
  p.write(wire);
  return out;
}

/** Where a stream is cut into reads: anywhere (byte offsets), or every few bytes (so at every kind of place). */
const cuts: fc.Arbitrary<number[] | number> = fc.oneof(fc.array(fc.nat(), { maxLength: 40, size: "max" }), fc.integer({ min: 1, max: 9 }));
const between = fc.constantFrom("", "", " ", "\n", "\t \r\n");

test("stream guard: any split of the stream into reads (in tags, attribute values, CDATA, characters) gives the elements of one read", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(genNode, between), { minLength: 1, maxLength: 6 }), cuts, (nodes, at) => {
      const wire = STREAM_HEADER + nodes.map(([n, sep]) => sep + render(n)).join("") + "</stream:stream>";
      const expected = parseWhole(wire);
      assert.equal(expected.length, nodes.length, "the reference parser reads every generated element");
      const { conn, elements, connect, warnings } = fakeLink(1 << 20);
      const socket = connect();
      for (const chunk of cut(Buffer.from(wire, "utf8"), at)) conn._onData(chunk);
      assert.deepEqual(
        elements.map((e) => e.toString()),
        expected,
      );
      assert.equal(socket.destroyed, false);
      assert.deepEqual(warnings, []);
    }),
    RUNS,
  );
});

test("stanza framer: the parser is only ever handed whole elements, and at most the limit is held", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(genNode, fc.integer({ min: 0, max: 3000 })), { minLength: 1, maxLength: 6 }), cuts, (nodes, at) => {
      const limit = 2048;
      const parser = new Parser();
      const seen: string[] = [];
      const dropped: number[] = [];
      parser.on("element", (el: Element) => seen.push(el.toString()));
      const framer = new StanzaFramer(limit, {
        write(text) {
          parser.write(text);
          // after whole elements the parser is back at the stream's root: nothing of a stanza held
          assert.equal(parser.cursor, parser.root);
        },
        oversize: (o) => void dropped.push(o.bytes),
      });
      // some stanzas padded past the limit, with text that is 1 to 4 bytes a character
      const stanzas = nodes.map(([n, pad]) => render({ ...n, children: [...n.children, { text: "é😀a中".repeat(pad), cdata: false }] }));
      const wire = STREAM_HEADER + stanzas.join("");
      const reads = cut(Buffer.from(wire, "utf8"), at);
      const decoder = new StringDecoder("utf8");
      for (const r of reads) {
        framer.feed(decoder.write(r));
        assert.ok(framer.heldSize <= limit, `held ${framer.heldSize} > ${limit}`);
      }
      const sizes = stanzas.map((s) => Buffer.byteLength(s));
      assert.deepEqual(
        dropped,
        sizes.filter((b) => b > limit),
        "each stanza over the limit is dropped whole, with its size",
      );
      assert.deepEqual(seen, parseWhole(STREAM_HEADER + stanzas.filter((_, i) => sizes[i]! <= limit).join("")), "the others arrive as sent, in order");
    }),
    { numRuns: 150 },
  );
});

/**
 * A stanza as a server routes it, padded with text that is 1 to 4 bytes a character; `raw`: an
 * attribute first, its value written with '>', '/' and the other quote left as they are.
 */
function routed(name: string, attrs: Record<string, string>, pad = 0, raw?: string): string {
  const text = xml(name, { xmlns: "jabber:component:accept", ...attrs }, pad > 0 ? xml("body", {}, "é😀a>'".repeat(pad)) : undefined).toString();
  if (raw === undefined) return text;
  return `<${name} odd='${raw.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/'/g, "&apos;")}'${text.slice(name.length + 1)}`;
}

const oversizeCase = fc.record({
  name: fc.constantFrom("message", "iq", "presence"),
  type: fc.constantFrom("chat", "normal", "get", "set", "result", "error", undefined),
  withFrom: fc.boolean(),
  // an attribute before the others, with '>' and '/' in it
  odd: fc.option(trickyText(6), { nil: undefined }),
});

test("stream guard: a stanza over the limit anywhere in the stream is dropped, answered once with policy-violation when due; the stanzas around it arrive in order; the link stays up", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 5 }), oversizeCase, fc.integer({ min: 1, max: 6 }), cuts, (before, after, c, times, at) => {
      const limit = 4096;
      const { conn, elements, warnings, connect } = fakeLink(limit);
      const socket = connect();
      const small = (id: string) => routed("message", { from: "bob@example.com/x", to: "+15552223333@sms.example.com", id, type: "chat" }, 20);
      const attrs: Record<string, string> = { to: "+15552223333@sms.example.com", id: "big'<>1" };
      if (c.withFrom) attrs.from = "alice@example.com/phone";
      if (c.type) attrs.type = c.type;
      const big = routed(c.name, attrs, (limit / 12) * times + 1, c.odd);
      const bigBytes = Buffer.byteLength(big);
      const ids = [...Array.from({ length: before }, (_, i) => `b${i}`), ...Array.from({ length: after }, (_, i) => `a${i}`)];
      const wire = STREAM_HEADER + ids.slice(0, before).map(small).join("") + big + ids.slice(before).map(small).join("");
      conn.written.length = 0;
      for (const chunk of cut(Buffer.from(wire, "utf8"), at)) conn._onData(chunk);

      assert.deepEqual(
        elements.map((e) => e.attrs.id),
        ids,
        "the others arrive whole, in order",
      );
      assert.equal(socket.destroyed, false, "the link stays up");
      assert.deepEqual(socket.written, [], "no stream error");
      assert.equal(warnings.length, 1, "one warning");
      assert.deepEqual(warnings[0], { from: c.withFrom ? "alice@example.com" : undefined, stanza: c.name, bytes: bigBytes, limit });
      const due = c.withFrom && (c.name === "iq" ? c.type === "get" || c.type === "set" : c.type !== "error");
      assert.equal(conn.written.length, due ? 1 : 0, due ? "answered once" : "an error or a result is never answered");
      if (due) {
        const answer = parseOne(conn.written[0]!);
        assert.equal(answer.name, c.name);
        assert.deepEqual({ ...answer.attrs }, { type: "error", id: "big'<>1", from: "+15552223333@sms.example.com", to: "alice@example.com/phone" });
        const error = answer.getChild("error");
        assert.equal(error?.attrs.type, "modify");
        assert.ok(error?.getChild("policy-violation", NS.stanzas));
        const what = { message: "message", iq: "request", presence: "presence" }[c.name];
        assert.equal(
          error?.getChildText("text", NS.stanzas),
          `This ${what} was ${bigBytes.toLocaleString("en-US")} bytes when it reached the gateway, which accepts at most 4,096 bytes (XMPP_MAX_STANZA_BYTES); it was dropped and nothing was sent.`,
        );
      }
    }),
    { numRuns: 200 },
  );
});

test("stream guard: a stanza of exactly the limit is read; one byte more is dropped", () => {
  const limit = 16 * 1024;
  const { conn, elements, connect } = fakeLink(limit);
  const socket = connect();
  conn._onData(Buffer.from(STREAM_HEADER));
  const make = (id: string, n: number) => xml("message", { xmlns: "jabber:component:accept", from: "a@b", id }, xml("body", {}, "p".repeat(n))).toString();
  const n = limit - Buffer.byteLength(make("exact", 1)) + 1;
  assert.equal(Buffer.byteLength(make("exact", n)), limit);
  conn._onData(Buffer.from(make("exact", n)));
  conn._onData(Buffer.from(make("over!", n + 1)));
  conn._onData(Buffer.from("<message id='next'/>"));
  assert.deepEqual(
    elements.map((e) => e.attrs.id),
    ["exact", "next"],
  );
  assert.equal(socket.destroyed, false);
  assert.equal(conn.written.length, 1);
  assert.match(
    parseOne(conn.written[0]!).getChild("error")?.getChildText("text", NS.stanzas) ?? "",
    /^This message was 16,385 bytes when it reached the gateway, which accepts at most 16,384 bytes \(XMPP_MAX_STANZA_BYTES\); it was dropped and nothing was sent\.$/,
  );
});

test("stream guard: what cannot be framed closes the stream (restricted-xml, bad-format, policy-violation for a header over the limit); the next connection starts afresh", () => {
  const cases: [string, RegExp][] = [
    [`${STREAM_HEADER}<!-- a comment -->`, /<restricted-xml /],
    [`${STREAM_HEADER}<?pi x?>`, /<restricted-xml /],
    [`${STREAM_HEADER}<![CDATA[x]]>`, /<bad-format /],
    ["</stream:stream>", /<bad-format /],
    [`<stream:stream k='${"x".repeat(20_000)}'>`, /<policy-violation /],
  ];
  for (const [wire, condition] of cases) {
    const { conn, elements, connect } = fakeLink(16 * 1024);
    const socket = connect();
    conn._onData(Buffer.from(wire));
    assert.ok(socket.destroyed, wire.slice(0, 40));
    assert.match(socket.written.join(""), condition);
    connect();
    conn._onData(Buffer.from(`${STREAM_HEADER}<message id='again'/>`));
    assert.equal(elements.at(-1)?.attrs.id, "again");
  }
});

test("stream guard: any junk from the server never throws out of the socket handler", () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(hostileText(40), fc.constantFrom("<", ">", "</x>", "&#0;", "&bogus;", "&#xFFFE;", "<a></b>", "]]>", "<!--", "<?x")), { maxLength: 12 }), (pieces) => {
      const { conn, connect } = fakeLink(4096);
      const socket = connect();
      conn._onData(Buffer.from("<stream:stream>"));
      for (const p of pieces) conn._onData(Buffer.from(p, "utf8"));
      // unparsable input either went through or closed the stream; nothing escaped
      if (socket.destroyed) assert.match(socket.written.join(""), /<(bad-format|restricted-xml|policy-violation) /);
    }),
    RUNS,
  );
});

test("stream guard: whatever is written to the server is XML-safe", () => {
  fc.assert(
    fc.property(anyText(2000), (s) => {
      const { conn } = fakeLink(4096);
      void conn.write(s);
      assert.equal(conn.written.at(-1), xmlSafe(s));
    }),
    RUNS,
  );
});
