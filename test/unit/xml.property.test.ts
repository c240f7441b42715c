// Property tests (fast-check) of what the gateway writes to and reads from the XMPP server: every
// stanza it renders is well-formed XML whatever the text (controls, non-characters, lone surrogates),
// the readers of incoming stanzas never throw, and the stream guard (src/xmpp/stream-guard.ts) keeps
// characters whole across socket reads, bounds a stanza's size and survives unparsable input.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { test } from "node:test";
import fc from "fast-check";
import xml, { type Element } from "@xmpp/xml";
import type { Component } from "@xmpp/component";
import type { XmppDelivery } from "../../src/core/message.js";
import { readExtensions } from "../../src/xmpp/extensions.js";
import { readForm } from "../../src/xmpp/forms.js";
import { deliveryStanza, errorElement, errorReply, NS } from "../../src/xmpp/stanzas.js";
import { guardStream, xmlSafe } from "../../src/xmpp/stream-guard.js";
import { anyText, build, hostileText, rawStanza, specialPiece } from "../support/hostile.js";

const RUNS = { numRuns: 300 };
const require = createRequire(import.meta.url);
const { Parser } = require("@xmpp/xml") as { Parser: new () => EventEmitter & { write(s: string): void } };

/** Characters XML 1.0 forbids, as UTF-16 (the same set the guard replaces). */
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
  fc.record({
    kind: fc.constant("chat" as const),
    id: hostileText(30),
    from: jidText,
    to: jidText,
    body: anyText(5000),
    mediaUrls: fc.array(hostileText(30), { maxLength: 3 }),
    acceptedAt: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    subject: fc.option(hostileText(), { nil: undefined }),
    type: fc.option(fc.constantFrom("chat" as const, "normal" as const, "headline" as const), { nil: undefined }),
  }).map((d) => JSON.parse(JSON.stringify(d)) as XmppDelivery),
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
        assert.deepEqual(back.getChildren("x", NS.oob).map((x) => x.getChildText("url")), item.mediaUrls.map(xmlSafe));
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
      assert.deepEqual(reply.getChildElements().map((c) => c.name), ["error"]);
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
    parser: (EventEmitter & { write(s: string): void }) | null;
    written: string[];
    write(s: string): Promise<void>;
    _onData(d: Buffer): void;
  };
  conn.written = [];
  conn.write = async (s: string) => void conn.written.push(s);
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

/** `bytes` cut at the given positions (sorted, deduplicated, inside the buffer). */
function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
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
      assert.deepEqual(elements.map((e) => e.getChildText("body")), bodies);
    }),
    RUNS,
  );
});

test("stream guard: a stanza over the limit closes the stream with policy-violation; the next connection starts afresh", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 100, max: 4000 }), (chunks, chunkSize) => {
      const limit = 2048;
      const { conn, elements, warnings, connect } = fakeLink(limit);
      const socket = connect();
      conn._onData(Buffer.from("<stream:stream><message id='ok'><body>hi</body></message><message id='big'><body>"));
      const piece = Buffer.from("é".repeat(Math.floor(chunkSize / 2)));
      const tail = Buffer.from("</body></message><message id='after'/>");
      for (let i = 0; i < chunks; i++) conn._onData(piece);
      conn._onData(tail);
      // Counted from the read after the last complete element (the guard counts whole reads).
      const over = chunks * piece.length + tail.length > limit;
      assert.deepEqual(elements.map((e) => e.attrs.id), over ? ["ok"] : ["ok", "big", "after"]);
      assert.equal(socket.destroyed, over);
      if (over) {
        assert.match(socket.written.join(""), /<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
        assert.equal(warnings.length, 1);
        // a new socket: counted from zero again
        connect();
        conn._onData(Buffer.from("<stream:stream><message id='again'/>"));
        assert.equal(elements.at(-1)?.attrs.id, "again");
      }
    }),
    { numRuns: 100 },
  );
});

test("stream guard: any junk from the server never throws out of the socket handler", () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(hostileText(40), fc.constantFrom("<", ">", "</x>", "&#0;", "&bogus;", "&#xFFFE;", "<a></b>", "]]>", "<!--", "<?x")), { maxLength: 12 }), (pieces) => {
      const { conn, connect } = fakeLink(4096);
      const socket = connect();
      conn._onData(Buffer.from("<stream:stream>"));
      for (const p of pieces) conn._onData(Buffer.from(p, "utf8"));
      // unparsable input either went through or closed the stream; nothing escaped
      if (socket.destroyed) assert.match(socket.written.join(""), /<(bad-format|policy-violation) /);
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
