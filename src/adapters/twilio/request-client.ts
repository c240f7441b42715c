// The Twilio SDK's HTTP transport, replaced by undici: keep-alive with a bounded pool, explicit
// timeouts, an optional base-URL override (fake Twilio in tests, TWILIO_API_URL), and errors that say
// whether the request can have reached Twilio. Everything else matches lib/base/RequestClient.js of
// twilio 6.2.0, so the SDK's Version.create()/RestException see exactly what axios would give them.
import { createRequire } from "node:module";
import twilio from "twilio";
import type TwilioRequestClient from "twilio/lib/base/RequestClient.js";
import type * as ResponseModule from "twilio/lib/http/response.js";
import { Agent, interceptors, type Dispatcher } from "undici";

// A CJS `export default class`: under NodeNext the class is the module's `default` member.
type TwilioResponse<T> = ResponseModule.default<T>;
type QsStringify = (obj: unknown, opts: { arrayFormat: "repeat" }) => string;

// The SDK serializes with `qs`; loading the very copy twilio resolves keeps our wire format identical
// to the SDK's (encoding of spaces, `*`, arrays as repeated keys, nulls, dates) without a direct dependency.
const requireFromTwilio = createRequire(createRequire(import.meta.url).resolve("twilio"));
const qsStringify = (requireFromTwilio("qs") as { stringify: QsStringify }).stringify;

export interface UndiciRequestClientOptions {
  /** Replaces scheme, host and port of every SDK URL (path and query are kept), e.g. `http://127.0.0.1:4010`. */
  baseUrl?: string;
  /** Connect, response-headers and body-idle timeouts, each; default 10000. */
  timeoutMs?: number;
  /** Connections per origin; default 16. */
  maxConnections?: number;
  /** Idle keep-alive before we drop a socket; default 4000. Short on purpose: a POST on a socket the peer
   *  already closed fails as "maybe sent", so stale sockets cost more than reconnects. */
  keepAliveTimeoutMs?: number;
}

/**
 * `not-sent`: no connection carried the request (refused, DNS, connect timeout, TLS failure), so a
 * resend cannot duplicate. `maybe-sent`: the request was (or may have been) written; Twilio may have
 * accepted it even though we never saw the answer.
 */
export type TransportFailureKind = "not-sent" | "maybe-sent";

export class TwilioTransportError extends Error {
  override readonly name = "TwilioTransportError";
  constructor(
    readonly kind: TransportFailureKind,
    /** The underlying error code (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT, ...), when there is one. */
    readonly code: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  get safeToRetry(): boolean {
    return this.kind === "not-sent";
  }
}

export function isTwilioTransportError(e: unknown): e is TwilioTransportError {
  return e instanceof TwilioTransportError;
}

// Errors raised before any byte of the request can have left this process.
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EADDRNOTAVAIL",
  "ETIMEDOUT", // kernel-level connect timeout; undici's own read timeouts have UND_ERR_* codes
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_INVALID_ARG",
  "ERR_INVALID_URL",
  "UND_ERR_CLOSED",
  "UND_ERR_DESTROYED",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function errorCode(e: unknown): string | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string") return code;
  // Node 20's happy-eyeballs connect reports an AggregateError of the per-address attempts.
  if (e instanceof AggregateError) {
    for (const inner of e.errors) {
      const c = errorCode(inner);
      if (c) return c;
    }
  }
  return errorCode((e as { cause?: unknown }).cause);
}

/** Classifies any error thrown by an undici request. Unknown errors count as maybe-sent: never guess "safe". */
export function toTransportError(e: unknown): TwilioTransportError {
  if (e instanceof TwilioTransportError) return e;
  const code = errorCode(e);
  const kind: TransportFailureKind = code !== undefined && (NOT_SENT_CODES.has(code) || code.startsWith("ERR_SSL_")) ? "not-sent" : "maybe-sent";
  const detail = e instanceof Error && e.message ? e.message : String(e);
  const what = kind === "not-sent" ? "could not connect to Twilio" : "no complete answer from Twilio";
  return new TwilioTransportError(kind, code, `${what} (${code ?? "error"}: ${detail})`, { cause: e });
}

export type TwilioRequestOptions<T> = TwilioRequestClient.RequestOptions<T>;

/** Status and headers of one HTTP answer (header names lower-case). */
export interface HttpAnswer {
  statusCode: number;
  headers: Record<string, string | string[]>;
}

export class UndiciRequestClient extends twilio.RequestClient {
  private readonly agent: Agent;
  private readonly redirecting: Dispatcher;
  private readonly baseUrl: URL | undefined;
  private readonly timeoutMs: number;
  /** The observer of the SDK call under way in observe(): request() takes it before its first await. */
  private observer: ((answer: HttpAnswer) => void) | undefined;

  constructor(opts: UndiciRequestClientOptions = {}) {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    // autoRetry must stay off: the SDK would resend a 429 behind the gateway's back (docs/developers/design.md "XMPP → outside" 4).
    super({ timeout: timeoutMs, autoRetry: false, keepAlive: true });
    this.timeoutMs = timeoutMs;
    this.baseUrl = opts.baseUrl ? new URL(opts.baseUrl) : undefined;
    this.agent = new Agent({
      connections: opts.maxConnections ?? 16,
      pipelining: 1,
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 4_000,
      connect: { timeout: timeoutMs },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    this.redirecting = this.agent.compose(interceptors.redirect({ maxRedirections: 10 }));
  }

  /**
   * Runs one SDK call and shows `onAnswer` every HTTP answer it received. The SDK's errors
   * (RestException) drop the response headers — Retry-After among them — and `lastResponse` is shared
   * by concurrent calls; this is scoped to the call. The SDK's create() reaches request() without
   * awaiting anything, so the observer is handed over synchronously (an AsyncLocalStorage would do
   * the same, but in Node 20 it turns on promise hooks for the whole process: a few per cent of CPU).
   */
  observe<T>(call: () => Promise<T>, onAnswer: (answer: HttpAnswer) => void): Promise<T> {
    const outer = this.observer;
    this.observer = onAnswer;
    try {
      return call();
    } finally {
      this.observer = outer;
    }
  }

  /** The URL actually requested, after the base-URL override. */
  resolveUrl(uri: string): string {
    if (!this.baseUrl) return uri;
    const u = new URL(uri);
    const target = new URL(this.baseUrl.href);
    // A base URL with a path prefix (a proxy mount) keeps its prefix in front of the SDK path.
    target.pathname = target.pathname.replace(/\/+$/, "") + u.pathname;
    target.search = u.search;
    return target.href;
  }

  override async request<TData>(opts: TwilioRequestOptions<TData>): Promise<TwilioResponse<TData>> {
    const observer = this.observer; // before any await: this call's own observer (see observe())
    if (!opts.method) throw new Error("http method is required");
    if (!opts.uri) throw new Error("uri is required");

    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      // undici owns connection management; a hop-by-hop header here is at best redundant.
      if (typeof v === "string" && k.toLowerCase() !== "connection") headers[k] = v;
    }
    if (opts.username && opts.password) {
      headers["Authorization"] = "Basic " + Buffer.from(opts.username + ":" + opts.password).toString("base64");
    } else if (opts.authStrategy) {
      headers["Authorization"] = await opts.authStrategy.getAuthString();
    }

    let body: string | undefined;
    // Like the SDK: only these two exact content types carry a body; anything else is dropped.
    if (opts.data) {
      if (headers["Content-Type"] === "application/x-www-form-urlencoded") {
        body = qsStringify(opts.data, { arrayFormat: "repeat" });
      } else if (headers["Content-Type"] === "application/json") {
        body = typeof opts.data === "string" ? opts.data : JSON.stringify(opts.data);
      }
    }

    let url = this.resolveUrl(opts.uri);
    if (opts.params) {
      const query = qsStringify(opts.params, { arrayFormat: "repeat" });
      if (query) url += (url.includes("?") ? "&" : "?") + query;
    }

    const timeout = opts.timeout ?? this.timeoutMs;
    let res: Dispatcher.ResponseData;
    let text: string;
    try {
      const target = new URL(url);
      res = await (opts.allowRedirects ? this.redirecting : this.agent).request({
        origin: target.origin,
        path: target.pathname + target.search,
        method: opts.method.toUpperCase() as Dispatcher.HttpMethod,
        headers,
        body,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      text = await res.body.text();
    } catch (e) {
      this.lastResponse = undefined;
      throw toTransportError(e);
    }

    const responseHeaders: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) responseHeaders[k] = v;
    // axios (the SDK's default) parses any non-empty body as JSON and silently keeps the text otherwise.
    let parsed: unknown = text;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    const response = { statusCode: res.statusCode, body: parsed as TData, headers: responseHeaders } as TwilioResponse<TData>;
    this.lastResponse = response;
    observer?.({ statusCode: res.statusCode, headers: responseHeaders });
    return response;
  }

  /** Waits for in-flight requests, then closes every pooled connection. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Drops every connection now, failing in-flight requests. */
  async destroy(): Promise<void> {
    await this.agent.destroy();
  }
}
