// The XEP-0114 link to the XMPP server, with the rules of docs/developers/design.md "Connection to the
// server": exponential backoff with jitter (xmpp.js only has a fixed 1 s delay), a watchdog for a
// handshake that never completes (xmpp.js can hang there, docs/facts/libraries.md), a fatal one-liner
// for a wrong secret or domain before the first `online`, and patient retries on `conflict` (another
// instance holds the domain).
import { component, type Component } from "@xmpp/component";
import type { Logger } from "../logger.js";
import { DEFAULT_MAX_STANZA_BYTES, guardStream } from "./stream-guard.js";

export interface ConnectionOptions {
  service: string;
  domain: string;
  secret: string;
  reconnect: { minMs: number; maxMs: number };
  handshakeTimeoutMs: number;
  /** XMPP_MAX_STANZA_BYTES: a larger stanza from the server is dropped and answered (stream-guard.ts). */
  maxStanzaBytes?: number;
  log: Logger;
  /** Called once with a one-line explanation when the configuration is certainly wrong. */
  onFatal(message: string): void;
  random?: () => number;
}

export interface ConnectionState {
  status: string;
  online: boolean;
  everOnline: boolean;
  reconnects: number;
  /** Another component holds the domain; we keep retrying at the capped interval. */
  conflict: boolean;
  lastError?: string;
  nextAttemptInMs?: number;
  /** When the current connection came online (ms since epoch). */
  onlineSince?: number;
}

/** Delay before reconnect attempt `attempt` (0-based): min·2^n, in [½, 1) of that, capped. */
export function reconnectDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp * (0.5 + random() / 2));
}

const FATAL_BEFORE_ONLINE: Record<string, string> = {
  "not-authorized": "the XMPP server refused the component handshake (not-authorized): XMPP_SECRET does not match the component secret configured for XMPP_DOMAIN",
  "host-unknown": "the XMPP server does not serve this component domain (host-unknown): check XMPP_DOMAIN against the server's component configuration",
  "invalid-namespace": "the XMPP server did not accept a component stream (invalid-namespace): check XMPP_SERVICE points at the server's component port, not its client port",
};

export function createConnection(opts: ConnectionOptions) {
  const xmpp: Component = component({ service: opts.service, domain: opts.domain, password: opts.secret });
  // xmpp.js's own reconnect uses a fixed delay; we schedule its reconnect ourselves with backoff.
  xmpp.reconnect.stop();
  xmpp.timeout = Math.min(opts.handshakeTimeoutMs, 10_000);
  // Hostile input both ways: invalid XML characters out, oversized or unparsable stanzas in.
  guardStream(xmpp, { maxStanzaBytes: opts.maxStanzaBytes ?? DEFAULT_MAX_STANZA_BYTES, log: opts.log });

  const random = opts.random ?? Math.random;
  const state: ConnectionState = { status: "offline", online: false, everOnline: false, reconnects: 0, conflict: false };
  let attempt = 0;
  let stopped = false;
  let fatal = false;
  let watchdog: NodeJS.Timeout | undefined;
  /** The stop in progress, if any: a start waits for it. */
  let stopping: Promise<void> | undefined;
  const onlineListeners = new Set<() => void>();

  xmpp.on("status", (status: string) => {
    state.status = status;
    if (status === "connect") armWatchdog();
  });

  xmpp.on("online", () => {
    clearTimeout(watchdog);
    attempt = 0;
    state.online = true;
    state.onlineSince = Date.now();
    state.everOnline = true;
    state.conflict = false;
    state.lastError = undefined;
    state.nextAttemptInMs = undefined;
    opts.log.info({ domain: opts.domain }, "component online");
    for (const l of onlineListeners) l();
  });

  xmpp.on("disconnect", () => {
    clearTimeout(watchdog);
    if (state.online) opts.log.warn({ domain: opts.domain }, "component disconnected");
    state.online = false;
    if (stopped || fatal) return;
    // On conflict the other instance may hold the domain for long: wait the capped interval.
    const d = reconnectDelay(state.conflict ? Number.MAX_SAFE_INTEGER : attempt, opts.reconnect.minMs, opts.reconnect.maxMs, random);
    attempt++;
    state.reconnects++;
    state.nextAttemptInMs = d;
    xmpp.reconnect.delay = d;
    opts.log.info({ delayMs: d, attempt }, "reconnecting to the XMPP server");
    xmpp.reconnect.scheduleReconnect();
  });

  xmpp.on("error", (err: Error & { condition?: string }) => {
    const condition = err.condition;
    state.lastError = condition ? `${err.name}: ${condition}${err.message && err.message !== condition ? ` (${err.message})` : ""}` : err.message ? `${err.name}: ${err.message}` : err.name;
    if (err.name === "StreamError" && condition === "conflict") {
      state.conflict = true;
      opts.log.warn({ domain: opts.domain }, "another component is connected for this domain (conflict); retrying at the capped interval");
      return;
    }
    const fatalText = condition ? FATAL_BEFORE_ONLINE[condition] : undefined;
    if (err.name === "StreamError" && fatalText && !state.everOnline) {
      if (fatal) return; // xmpp.js emits the stream error twice per attempt
      fatal = true;
      xmpp.reconnect.stop();
      opts.onFatal(`${fatalText} (XMPP_DOMAIN=${opts.domain}, XMPP_SERVICE=${opts.service})`);
      return;
    }
    opts.log.warn({ err: state.lastError }, "XMPP connection error");
  });

  function armWatchdog(): void {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      if (state.online || stopped) return;
      state.lastError = `handshake not completed within ${opts.handshakeTimeoutMs} ms`;
      opts.log.warn({ timeoutMs: opts.handshakeTimeoutMs }, "XMPP handshake stuck; restarting the connection");
      // Destroying the socket leads to `disconnect`, which schedules the next attempt with backoff.
      (xmpp as unknown as { socket?: { destroy(): void } }).socket?.destroy();
    }, opts.handshakeTimeoutMs);
    watchdog.unref();
  }

  return {
    xmpp,
    state: (): ConnectionState => ({ ...state }),
    isOnline: () => state.online,
    onOnline(l: () => void) {
      onlineListeners.add(l);
    },
    /** Starts connecting; never waits for the server (inbound SMS are accepted meanwhile). */
    start(): void {
      stopped = false;
      const begin = () => {
        if (stopped) return;
        xmpp.start().catch(() => {
          // Failures are reported through `error`/`disconnect`, which schedule the retries.
        });
      };
      // A stop still closing the last connection finishes first (see stop()).
      if (stopping) void stopping.then(begin);
      else begin();
    },
    /**
     * Closes the stream properly when the server is there; never waits long when it is not (0: drops the
     * socket at once). xmpp.js's own stop waits for the server's </stream> and then the socket's close,
     * each up to its timeout, and then ends whatever socket it holds: left running past this call it
     * would end the next connection's (a lease lost and taken back within those seconds). So its waits
     * are bounded by `closeTimeoutMs` and it is awaited whole.
     */
    stop(closeTimeoutMs = 2000): Promise<void> {
      stopped = true;
      clearTimeout(watchdog);
      xmpp.reconnect.stop();
      stopping ??= (async () => {
        if (!xmpp.socket) return;
        if (closeTimeoutMs === 0) xmpp.socket.destroy();
        const timeout = xmpp.timeout;
        xmpp.timeout = Math.max(1, closeTimeoutMs); // 0 would mean "no timeout" to xmpp.js
        try {
          await xmpp.stop().catch(() => undefined);
        } finally {
          xmpp.timeout = timeout;
          xmpp.socket?.destroy();
        }
      })().finally(() => (stopping = undefined));
      return stopping;
    },
  };
}

export type Connection = ReturnType<typeof createConnection>;
