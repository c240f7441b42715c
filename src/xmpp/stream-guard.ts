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
//   limit (a stanza is buffered until its end tag): past XMPP_MAX_STANZA_BYTES the gateway closes
//   the stream with <policy-violation/> (RFC 6120 §4.9.3.14) and reconnects, so memory stays bounded
//   whatever the server sends. And an exception thrown by the parser (ltx throws on some entities)
//   or data arriving after a parse error no longer escapes as an uncaught exception: the stream is
//   closed with <bad-format/> instead, and the connection is retried.
import { StringDecoder } from "node:string_decoder";
import type { Component } from "@xmpp/component";
import type { Logger } from "../logger.js";

/** Characters XML 1.0 forbids (§2.2 Char), as UTF-16: controls, U+FFFE/U+FFFF, unpaired surrogates. */
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `s` with every character XML 1.0 forbids replaced by U+FFFD (the same string when there is none). */
export function xmlSafe(s: string): string {
  return s.replace(XML_INVALID, "\uFFFD");
}

/** Default of XMPP_MAX_STANZA_BYTES: twice the largest stanza Prosody accepts by default (512 KiB). */
export const DEFAULT_MAX_STANZA_BYTES = 1024 * 1024;

const NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams";

interface Socket {
  write(data: string, cb?: (err?: Error | null) => void): boolean;
  destroy(): void;
}
/** The parts of xmpp.js's Connection this guard replaces or reads (not in its public API). */
interface ConnectionInternals {
  socket: Socket | null;
  parser: { write(s: string): void } | null;
  write(s: string): Promise<void>;
  _onData(data: Buffer | string): void;
  emit(event: string, ...args: unknown[]): boolean;
  on(event: string, l: (...args: unknown[]) => void): unknown;
}

export interface StreamGuardOptions {
  /** Largest stanza accepted from the server, in bytes (counted per socket read: up to one read, 64 KiB, more). */
  maxStanzaBytes: number;
  log: Pick<Logger, "warn">;
}

/** Installs the guard on an xmpp.js entity before it connects. */
export function guardStream(xmpp: Component, opts: StreamGuardOptions): void {
  const conn = xmpp as unknown as ConnectionInternals;

  const write = conn.write.bind(conn);
  conn.write = (s: string) => write(xmlSafe(s));

  let socket: Socket | null = null;
  let decoder = new StringDecoder("utf8");
  /** Bytes read since the last complete top-level element: the stanza being received, at most one read more. */
  let pending = 0;
  /** This socket's stream was given up: its remaining data is dropped until the next connection. */
  let closing = false;

  conn.on("element", () => {
    pending = 0;
  });

  function giveUp(condition: "policy-violation" | "bad-format", text: string): void {
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
    if (conn.socket !== socket) {
      // A new connection (xmpp.js makes a new socket and parser for each): fresh state.
      socket = conn.socket;
      decoder = new StringDecoder("utf8");
      pending = 0;
      closing = false;
    }
    if (closing || !conn.parser) return; // after a parse error xmpp.js drops its parser; the data has nowhere to go
    pending += typeof data === "string" ? Buffer.byteLength(data) : data.length;
    if (pending > opts.maxStanzaBytes) {
      opts.log.warn({ bytes: pending, limit: opts.maxStanzaBytes }, "the XMPP server sent a stanza larger than XMPP_MAX_STANZA_BYTES; closing the stream (policy-violation) and reconnecting");
      giveUp("policy-violation", `stanza larger than ${opts.maxStanzaBytes} bytes`);
      return;
    }
    const str = typeof data === "string" ? data : decoder.write(data);
    conn.emit("input", str);
    try {
      conn.parser.write(str);
    } catch (err) {
      opts.log.warn({ err: (err as Error).message }, "could not read what the XMPP server sent; closing the stream (bad-format) and reconnecting");
      giveUp("bad-format", "unparsable XML");
    }
  };
}
