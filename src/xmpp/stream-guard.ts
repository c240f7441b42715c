// Hostile input on the XEP-0114 link, both ways (issue 6, "Hostile input"). xmpp.js 0.13 trusts the
// server completely; this makes the link safe against what a text, a bot or a broken server can carry:
//
// - Out: XML 1.0 forbids C0 control characters (but tab, LF, CR), U+FFFE/U+FFFF and unpaired
//   surrogates. An SMS, a message-in post or a bot's reply may hold them, and ltx escapes only
//   & < > " '. One such character in a stanza makes the server close the whole component stream
//   (not-well-formed), and the redelivered stanza closes it again, forever. Everything written is
//   cleaned here, the one place every stanza goes through: each such character becomes U+FFFD.
// - In: xmpp.js decodes each socket read as UTF-8 on its own, so a character split between two reads
//   turns into two U+FFFD; here one decoder per connection keeps it whole. It has no stanza size
//   limit (a stanza is buffered until its end tag). Here the stream is framed into top-level elements
//   (stanza-framer.ts) and the parser is handed only whole ones: a stanza is held until its end tag, up
//   to XMPP_MAX_STANZA_BYTES, so memory stays bounded whatever the server sends. A larger stanza is
//   dropped whole, never parsed, and the link stays up: the sender of a message, an IQ get/set or a
//   presence gets a policy-violation error (RFC 6120 §8.3.3.12) saying why, errors and IQ results
//   are only dropped (§8.3.1, §8.2.3), and one warning names the sender and the size. Which senders can get a
//   stanza that large through depends on the server's own limits, and on how much it grows when the
//   server writes it out again (docs/facts/xmpp-servers.md).
// - What cannot be read: markup the framer cannot follow, comments, processing instructions and DTDs
//   (forbidden in XMPP, RFC 6120 §11.1), an exception thrown by the parser (ltx throws on some
//   entities) or data arriving after a parse error no longer escapes as an uncaught exception: the
//   stream is closed with <bad-format/> or <restricted-xml/> instead, and the connection is retried
//   (connection.ts, with its backoff: a server that keeps sending the same bytes is not hammered).
import { StringDecoder } from "node:string_decoder";
import type { Component } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { maskJid, type Logger } from "../logger.js";
import { FramingError, StanzaFramer, type Oversize } from "./stanza-framer.js";
import { errorReply } from "./stanzas.js";

/** Characters XML 1.0 forbids (§2.2 Char), as UTF-16: controls, U+FFFE/U+FFFF, unpaired surrogates. */
// eslint-disable-next-line no-control-regex -- these are the characters to find
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `s` with every character XML 1.0 forbids replaced by U+FFFD (the same string when there is none). */
export function xmlSafe(s: string): string {
  return s.replace(XML_INVALID, "\uFFFD");
}

/**
 * Default of XMPP_MAX_STANZA_BYTES: twice the largest stanza Prosody reads from another server by
 * default (512 KiB). Escaped again on its way, a stanza can arrive larger (docs/facts/xmpp-servers.md); it
 * is then dropped and answered, and the link stays up.
 */
export const DEFAULT_MAX_STANZA_BYTES = 1024 * 1024;

const NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams";

interface Socket {
  write(data: string, cb?: (err?: Error | null) => void): boolean;
  destroy(): void;
}
interface StreamParser {
  write(s: string): void;
  on(event: string, l: (...args: never[]) => void): unknown;
}
/** The parts of xmpp.js's Connection this guard replaces or reads (not in its public API). */
interface ConnectionInternals {
  socket: Socket | null;
  parser: StreamParser | null;
  /** The parser class xmpp.js reads the stream with (@xmpp/xml's Parser). */
  Parser: new () => StreamParser;
  write(s: string): Promise<void>;
  _onData(data: Buffer | string): void;
  emit(event: string, ...args: unknown[]): boolean;
  on(event: string, l: (...args: unknown[]) => void): unknown;
}

export interface StreamGuardOptions {
  /** Largest stanza accepted from the server, in bytes (UTF-8, as received). */
  maxStanzaBytes: number;
  log: Pick<Logger, "warn">;
}

/** Installs the guard on an xmpp.js entity before it connects. */
export function guardStream(xmpp: Component, opts: StreamGuardOptions): void {
  const conn = xmpp as unknown as ConnectionInternals;
  const limit = opts.maxStanzaBytes;

  const write = conn.write.bind(conn);
  conn.write = (s: string) => write(xmlSafe(s));

  let socket: Socket | null = null;
  let parser: StreamParser | null = null;
  let decoder = new StringDecoder("utf8");
  let framer = newFramer();
  /**
   * Characters handed to the parser since it last produced an element. The framer hands on only whole
   * elements, so this stays small; if the parser reads the markup otherwise than the framer (it does
   * not check well-formedness), it could keep a growing remainder: past the limit, the stream is closed.
   */
  let unread = 0;
  /** This socket's stream was given up: its remaining data is dropped until the next connection. */
  let closing = false;

  conn.on("element", () => {
    unread = 0;
  });

  function newFramer(): StanzaFramer {
    return new StanzaFramer(limit, {
      write(text) {
        const p = conn.parser;
        if (!p) return; // after a parse error xmpp.js drops its parser; the data has nowhere to go
        unread += text.length;
        p.write(text);
        if (unread > 2 * limit) throw new FramingError("bad-format", "the parser did not find the elements the framer did");
      },
      oversize: (o) => answerOversize(xmpp, conn, o, opts),
    });
  }

  function giveUp(condition: FramingError["condition"], text: string): void {
    closing = true;
    const s = conn.socket;
    if (!s) return;
    const error = `<stream:error><${condition} xmlns='${NS_STREAMS}'/><text xmlns='${NS_STREAMS}'>${text}</text></stream:error></stream:stream>`;
    // Destroying the socket leads to `disconnect`, which schedules the next attempt (connection.ts).
    try {
      s.write(error, () => s.destroy());
    } catch {
      s.destroy();
    }
  }

  conn._onData = function onData(data: Buffer | string): void {
    if (conn.socket !== socket || conn.parser !== parser) {
      // A new connection or stream (xmpp.js makes a new socket and parser for each): fresh state.
      if (conn.socket !== socket) closing = false;
      socket = conn.socket;
      parser = conn.parser;
      decoder = new StringDecoder("utf8");
      framer = newFramer();
      unread = 0;
    }
    if (closing || !conn.parser) return;
    const str = typeof data === "string" ? data : decoder.write(data);
    conn.emit("input", str);
    try {
      framer.feed(str);
    } catch (err) {
      // FramingError messages are fixed sentences of ours (no received text): safe in the stream error.
      const framing = err instanceof FramingError;
      const condition = framing ? err.condition : "bad-format";
      opts.log.warn({ err: (err as Error).message, limit }, `could not read what the XMPP server sent; closing the stream (${condition}) and reconnecting`);
      giveUp(condition, framing ? err.message : "unparsable XML");
    }
  };
}

/** The start tag of a dropped stanza, read with xmpp.js's own parser (attribute values unescaped). */
function readStartTag(conn: ConnectionInternals, startTag: string | undefined): Element | undefined {
  if (!startTag) return undefined;
  let el: Element | undefined;
  try {
    const p = new conn.Parser();
    p.on("start", (e: Element) => (el = e));
    p.on("error", () => undefined);
    p.write(startTag);
  } catch {
    return undefined;
  }
  return el;
}

/** RFC 6120 §8.3.1: an error answers a message, an IQ get/set or a presence; never an error or a result. */
function answerable(el: Element): boolean {
  const { type } = el.attrs;
  if (el.name === "message" || el.name === "presence") return type !== "error";
  if (el.name === "iq") return type === "get" || type === "set";
  return false;
}

const WHAT: Record<string, string> = { message: "message", iq: "request", presence: "presence" };

/** The text of the policy-violation error: what was too large, by how much, and that nothing was sent. */
function oversizeText(name: string, bytes: number, limit: number): string {
  const n = (x: number) => x.toLocaleString("en-US");
  return `This ${WHAT[name] ?? "stanza"} was ${n(bytes)} bytes when it reached the gateway, which accepts at most ${n(limit)} bytes (XMPP_MAX_STANZA_BYTES); it was dropped and nothing was sent.`;
}

/** A stanza over the limit was dropped: says so in the log and, when one is due, to its sender. */
function answerOversize(xmpp: Component, conn: ConnectionInternals, o: Oversize, opts: StreamGuardOptions): void {
  const el = readStartTag(conn, o.startTag);
  const from = el?.attrs.from;
  const answer = el && from && answerable(el) ? errorReply(el, "modify", "policy-violation", oversizeText(el.name, o.bytes, opts.maxStanzaBytes)) : undefined;
  opts.log.warn(
    // a user's JID, never a phone number; masked all the same should one ever come this way
    { from: maskJid(from?.split("/")[0]), stanza: el?.name, bytes: o.bytes, limit: opts.maxStanzaBytes },
    `dropped a stanza larger than XMPP_MAX_STANZA_BYTES from the XMPP server; ${answer ? "answered policy-violation" : "not answered (no sender, or an error or IQ result)"}; the link stays up`,
  );
  if (!answer) return;
  try {
    xmpp.send(answer).catch(() => undefined); // the link went down meanwhile: nothing to answer on
  } catch {
    // not online (send() throws before it returns a promise): nobody to answer yet
  }
}
