// A logged-in XMPP user for integration tests (@xmpp/client 0.14 over plain TCP, no TLS).
// Records every stanza it receives; tests wait for, or rule out, stanzas by predicate.
import { randomUUID } from "node:crypto";

// @xmpp/client 0.14 ships no type declarations (and there is no @types package for 0.14):
// its exports are given the local types below. @ts-ignore (not @ts-expect-error) keeps
// this compiling if somebody adds a declaration later.
// eslint-disable-next-line @typescript-eslint/ban-ts-comment -- @ts-ignore on purpose, see above
// @ts-ignore -- untyped ESM package
import { client as untypedClient, xml as untypedXml } from "@xmpp/client";

import type { XmppServer } from "./xmpp-server.js";

/** The parts of an ltx Element (what @xmpp/xml builds and parses) that tests use. */
export interface StanzaElement {
  name: string;
  attrs: Record<string, string>;
  children: StanzaNode[];
  parent: StanzaElement | null;
  is(name: string, xmlns?: string): boolean;
  getName(): string;
  getNS(): string | undefined;
  attr(name: string): string | undefined;
  getAttr(name: string, xmlns?: string): string | undefined;
  getChild(name: string, xmlns?: string): StanzaElement | undefined;
  getChildren(name: string, xmlns?: string): StanzaElement[];
  getChildElements(): StanzaElement[];
  getChildByAttr(attr: string, val: string, xmlns?: string, recursive?: boolean): StanzaElement | undefined;
  /** text of the first child `name`, or null when there is none */
  getChildText(name: string, xmlns?: string): string | null;
  getText(): string;
  text(): string;
  c(name: string, attrs?: XmlAttrs): StanzaElement;
  t(text: string): StanzaElement;
  up(): StanzaElement;
  append(...nodes: XmlChild[]): StanzaElement;
  remove(el: StanzaElement | string, xmlns?: string): StanzaElement;
  clone(): StanzaElement;
  toString(): string;
}
export type StanzaNode = StanzaElement | string;
export type XmlAttrs = Record<string, string | number | null | undefined>;
export type XmlChild = StanzaElement | string | number | boolean | null | undefined | readonly XmlChild[];

/** Builds an element: `xml("message", { to, type: "chat" }, xml("body", {}, "hi"))`. */
export const xml = untypedXml as (name: string, attrs?: XmlAttrs | null, ...children: XmlChild[]) => StanzaElement;

interface ClientEntity {
  status: string;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(el: StanzaElement): Promise<void>;
  on(event: "stanza", listener: (el: StanzaElement) => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  on(event: "status", listener: (status: string) => void): unknown;
  reconnect: { stop(): void };
  jid: { toString(): string; bare(): { toString(): string } } | null;
  socket: { destroy(): void } | null;
}
const createClient = untypedClient as (opts: { service: string; domain: string; username: string; password: string; resource?: string }) => ClientEntity;

export interface ConnectClientOptions {
  server: XmppServer;
  /** "alice" on the server's domain, or "mallory@elsewhere.example" on its foreign-looking VirtualHost */
  username: string;
  password: string;
  /** default: a random one chosen by the server */
  resource?: string;
  /** login timeout, default 10 s */
  timeoutMs?: number;
  /** send initial presence after login (default true) */
  presence?: boolean;
}

export interface TestClient {
  /** full JID, e.g. "alice@localhost/abc" */
  jid: string;
  /** "alice@localhost" */
  bareJid: string;
  /** every stanza received since login, in order (also those waitFor() already returned) */
  received: StanzaElement[];
  send(el: StanzaElement): Promise<void>;
  /**
   * The first received stanza matching `pred`: looks at those already received, then waits.
   * Rejects after timeoutMs with a message listing what was received.
   */
  waitFor(pred: (el: StanzaElement) => boolean, timeoutMs?: number): Promise<StanzaElement>;
  /**
   * Rejects if a stanza matching `pred` was already received or arrives within `ms`;
   * resolves after `ms` otherwise.
   */
  expectNone(pred: (el: StanzaElement) => boolean, ms: number): Promise<void>;
  /**
   * Sends an IQ (a fresh id is set unless it has one) and resolves with the reply stanza,
   * type result or error (no throw on error); rejects only on timeout (default 5 s).
   */
  iq(el: StanzaElement, timeoutMs?: number): Promise<StanzaElement>;
  /** whether the stream is still up (false after stop() or when the server went away) */
  isOnline(): boolean;
  /** closes the stream; idempotent, never throws */
  stop(): Promise<void>;
}

const DEFAULT_WAIT_MS = 5000;

function describeReceived(received: readonly StanzaElement[]): string {
  if (received.length === 0) return "nothing was received";
  const last = received.slice(-25);
  const lines = last.map((el) => {
    const s = el.toString();
    return `  ${s.length > 600 ? `${s.slice(0, 600)}…` : s}`;
  });
  const skipped = received.length - last.length;
  return `received ${received.length} stanza(s)${skipped > 0 ? ` (last ${last.length} shown)` : ""}:\n${lines.join("\n")}`;
}

/** Logs in `username` on `server` (plain TCP to 127.0.0.1:c2sPort) and sends initial presence. */
export async function connectClient(opts: ConnectClientOptions): Promise<TestClient> {
  const { server, password } = opts;
  // "mallory@elsewhere.example": an account on the server's second (foreign-looking) VirtualHost.
  const [username, domain] = opts.username.includes("@") ? (opts.username.split("@", 2) as [string, string]) : [opts.username, server.domain];
  const xmpp = createClient({
    service: `xmpp://127.0.0.1:${server.c2sPort}`,
    domain,
    username,
    password,
    ...(opts.resource === undefined ? {} : { resource: opts.resource }),
  });
  // A test client does not come back by itself after the server goes away: tests reconnect explicitly.
  xmpp.reconnect.stop();

  const received: StanzaElement[] = [];
  const listeners = new Set<(el: StanzaElement) => void>();
  const errors: Error[] = [];
  let stopped = false;

  xmpp.on("stanza", (el) => {
    received.push(el);
    for (const l of [...listeners]) l(el);
  });
  // without a listener an 'error' event (e.g. the server closing the stream) would crash the test process
  xmpp.on("error", (err) => {
    errors.push(err);
  });

  const loginTimeout = opts.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      xmpp.start(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no session after ${loginTimeout} ms (status ${xmpp.status})`)), loginTimeout);
      }),
    ]);
  } catch (err) {
    clearTimeout(timer);
    await hardStop(xmpp);
    const cause = err instanceof Error ? err : new Error(String(err));
    const more = errors.filter((e) => e !== cause).map((e) => e.message);
    throw new Error(
      `connectClient ${username}@${domain} via 127.0.0.1:${server.c2sPort} (${server.kind}) failed: ${cause.name}: ${cause.message}` + (more.length > 0 ? ` (also: ${more.join("; ")})` : ""),
      { cause },
    );
  }
  clearTimeout(timer);
  if (xmpp.jid === null) throw new Error("connectClient: online without a JID");
  const jid = xmpp.jid.toString();
  const bareJid = xmpp.jid.bare().toString();
  if (opts.presence ?? true) await xmpp.send(xml("presence"));

  const waitFor = (pred: (el: StanzaElement) => boolean, timeoutMs = DEFAULT_WAIT_MS): Promise<StanzaElement> => {
    const already = received.find(pred);
    if (already !== undefined) return Promise.resolve(already);
    const stack = new Error("waitFor").stack;
    return new Promise((resolve, reject) => {
      const listener = (el: StanzaElement): void => {
        if (!pred(el)) return;
        clearTimeout(t);
        listeners.delete(listener);
        resolve(el);
      };
      const t = setTimeout(() => {
        listeners.delete(listener);
        const err = new Error(`${bareJid}: no matching stanza within ${timeoutMs} ms (predicate: ${pred.toString().slice(0, 200)}); ${describeReceived(received)}`);
        if (stack) err.stack = `${err.message}\n${stack.split("\n").slice(2).join("\n")}`;
        reject(err);
      }, timeoutMs);
      listeners.add(listener);
    });
  };

  const expectNone = (pred: (el: StanzaElement) => boolean, ms: number): Promise<void> => {
    const already = received.find(pred);
    if (already !== undefined) {
      return Promise.reject(new Error(`${bareJid}: expected no such stanza, but already received: ${already.toString()}`));
    }
    return new Promise((resolve, reject) => {
      const listener = (el: StanzaElement): void => {
        if (!pred(el)) return;
        clearTimeout(t);
        listeners.delete(listener);
        reject(new Error(`${bareJid}: expected no such stanza within ${ms} ms, but received: ${el.toString()}`));
      };
      const t = setTimeout(() => {
        listeners.delete(listener);
        resolve();
      }, ms);
      listeners.add(listener);
    });
  };

  return {
    jid,
    bareJid,
    received,
    send: (el) => xmpp.send(el),
    waitFor,
    expectNone,
    async iq(el, timeoutMs = DEFAULT_WAIT_MS) {
      if (el.name !== "iq") throw new Error(`iq(): expected an <iq/>, got <${el.name}/>`);
      if (!el.attrs.id) el.attrs.id = `iq-${randomUUID()}`;
      const id = el.attrs.id;
      const reply = waitFor((r) => r.name === "iq" && r.attrs.id === id && (r.attrs.type === "result" || r.attrs.type === "error"), timeoutMs);
      await xmpp.send(el);
      return reply;
    },
    isOnline: () => !stopped && xmpp.status === "online",
    async stop() {
      if (stopped) return;
      stopped = true;
      listeners.clear();
      await hardStop(xmpp);
    },
  };
}

/** xmpp.stop() (close the stream politely) with a 2 s cap, then drop the socket. */
async function hardStop(xmpp: ClientEntity): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      xmpp.stop().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 2000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    try {
      xmpp.socket?.destroy();
    } catch {
      /* already closed */
    }
  }
}
