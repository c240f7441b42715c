// A one-off XEP-0114 handshake over raw TCP, then a proper close: stream header, read the stream id,
// <handshake>sha1(streamId + secret)</handshake>, expect <handshake/> (or a stream error). Only for
// when no gateway runs: with one connected, the server answers conflict (Prosody's kick_old would
// even drop the running gateway).
import { createHash } from "node:crypto";
import { connect, type Socket } from "node:net";

export type HandshakeResult =
  | { ok: true; streamId: string }
  /** The server closed the stream with this error condition (not-authorized, host-unknown, conflict…). */
  | { ok: false; kind: "stream-error"; condition: string; text?: string }
  /** No TCP connection (ECONNREFUSED, ENOTFOUND, …). */
  | { ok: false; kind: "connect"; code: string; message: string }
  /** Connected, but the server did not answer as a component listener in time, or closed the socket. */
  | { ok: false; kind: "protocol"; message: string };

const NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams";

/** `xmpp://host:port` (XMPP_SERVICE) → host and port (5347 by default). */
export function parseService(service: string): { host: string; port: number } {
  const u = new URL(service);
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: u.port ? Number(u.port) : 5347 };
}

const escapeAttr = (s: string) => s.replace(/&/g, "&amp;").replace(/'/g, "&apos;").replace(/</g, "&lt;");

/** The condition of a <stream:error> in `buf`, if one is complete there. */
function streamError(buf: string): { condition: string; text?: string } | undefined {
  const m = /<(?:stream:)?error\b[^>]*>([\s\S]*?)<\/(?:stream:)?error>/.exec(buf);
  if (!m) return undefined;
  const inner = m[1] ?? "";
  const text = /<text\b[^>]*>([\s\S]*?)<\/text>/.exec(inner)?.[1];
  const conditions = [...inner.matchAll(/<([a-z-]+)\b[^>]*?(?:\/>|>)/g)].map((c) => c[1]!).filter((n) => n !== "text");
  const withNs = [...inner.matchAll(/<([a-z-]+)\b[^>]*xmlns=['"]([^'"]+)['"]/g)].find((c) => c[2] === NS_STREAMS && c[1] !== "text")?.[1];
  return { condition: withNs ?? conditions[0] ?? "undefined-condition", ...(text ? { text } : {}) };
}

export function componentHandshake(opts: { service: string; domain: string; secret: string; timeoutMs?: number }): Promise<HandshakeResult> {
  const { host, port } = parseService(opts.service);
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve) => {
    let buf = "";
    let streamId: string | undefined;
    let settled = false;
    let connected = false;
    const socket: Socket = connect({ host, port });
    const finish = (r: HandshakeResult, close: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (close && connected && !socket.destroyed) {
        // Close our stream politely, then drop the socket shortly after either way.
        socket.end("</stream:stream>");
        setTimeout(() => socket.destroy(), 500).unref();
      } else socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () =>
        finish(
          {
            ok: false,
            kind: "protocol",
            message: connected
              ? `no ${streamId === undefined ? "stream header" : "handshake answer"} within ${Math.round(timeoutMs / 1000)} s: is XMPP_SERVICE the server's component port?`
              : `no TCP connection within ${Math.round(timeoutMs / 1000)} s`,
          },
          true,
        ),
      timeoutMs,
    );
    socket.setEncoding("utf8");
    socket.on("connect", () => {
      connected = true;
      socket.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${escapeAttr(opts.domain)}'>`);
    });
    socket.on("data", (chunk: string) => {
      buf += chunk;
      if (buf.length > 256 * 1024) return finish({ ok: false, kind: "protocol", message: "the server sent more than 256 KiB without completing the handshake" }, false);
      // A client or server-to-server listener answers with its own stream namespace (and usually an error).
      const opened = streamId === undefined ? /<(?:stream:)?stream\b[^>]*>/.exec(buf)?.[0] : undefined;
      const wrongNs = opened && /\sxmlns=(['"])jabber:(client|server)\1/.exec(opened)?.[2];
      if (wrongNs)
        return finish(
          {
            ok: false,
            kind: "protocol",
            message: `the server opened a jabber:${wrongNs} stream: XMPP_SERVICE points at a ${wrongNs === "client" ? "client" : "server-to-server"} port, not the component port`,
          },
          false,
        );
      const err = streamError(buf);
      if (err) return finish({ ok: false, kind: "stream-error", ...err }, false);
      if (streamId === undefined) {
        const header = /<(?:stream:)?stream\b[^>]*>/.exec(buf)?.[0];
        if (!header) return;
        const id = /\sid=(['"])(.*?)\1/.exec(header)?.[2];
        if (id === undefined) return finish({ ok: false, kind: "protocol", message: "the server's stream header has no id: is XMPP_SERVICE a component (XEP-0114) port?" }, true);
        if (!/jabber:component:accept/.test(header))
          return finish(
            {
              ok: false,
              kind: "protocol",
              message: "the server did not open a component stream (jabber:component:accept): XMPP_SERVICE points at a client or server-to-server port, not the component port",
            },
            true,
          );
        streamId = id;
        buf = buf.slice(buf.indexOf(header) + header.length);
        const digest = createHash("sha1")
          .update(streamId + opts.secret)
          .digest("hex");
        socket.write(`<handshake>${digest}</handshake>`);
        return;
      }
      if (/<handshake\s*\/>|<handshake\b[^>]*>\s*<\/handshake>/.test(buf)) finish({ ok: true, streamId }, true);
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      if (!connected) finish({ ok: false, kind: "connect", code: e.code ?? "ERROR", message: e.message }, false);
      else finish({ ok: false, kind: "protocol", message: `the connection failed during the handshake: ${e.message}` }, false);
    });
    socket.on("close", () => {
      const err = streamError(buf);
      if (err) finish({ ok: false, kind: "stream-error", ...err }, false);
      else finish({ ok: false, kind: "protocol", message: "the server closed the connection without completing the handshake" }, false);
    });
  });
}
