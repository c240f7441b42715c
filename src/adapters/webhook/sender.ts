// POSTs signed message payloads to webhook receivers and classifies the answer for the delivery engine:
// ok (maybe with a reply), permanent (do not retry, tell the sender) or retry (5xx, 408/425/429,
// timeouts, network trouble). Redirects are never followed: a 3xx could point anywhere, including
// at an address the SSRF guard would refuse.
import { isIP } from "node:net";
import { Agent, type Dispatcher } from "undici";
import { follow, timedOut } from "../../core/util/abort.js";
import type { WebhookPayload, WebhookResult, WebhookSender } from "../../core/ports.js";
import { signPayload, SIGNATURE_HEADER, TIMESTAMP_HEADER } from "../../webhooks/verify.js";
import { parseRetryAfter } from "../twilio/retry-after.js";
import { checkWebhookUrl, classifyAddress, ForbiddenAddressError, guardedLookup, isLocalhostName, systemResolver, type Resolver } from "./ssrf.js";

export interface WebhookSenderOptions {
  /** WEBHOOK_ALLOW_PRIVATE: allow loopback/private/link-local targets. */
  allowPrivate: boolean;
  /** Bound on one request (connect, answer and body, in total). */
  timeoutMs: number;
  /** Response bytes read at most (the rest is dropped); default 64 KiB. */
  maxResponseBytes?: number;
  userAgent?: string;
  /** Name resolution (tests simulate DNS rebinding with it); default dns.lookup. */
  resolve?: Resolver;
}

const EXCERPT_CHARS = 200;

/**
 * The origin only: the query string, the userinfo and often the path of a webhook URL carry its
 * credential (Slack, Discord and Teams hooks are `https://host/<secret path>`). Reasons built with it
 * reach the log, dead letters and the user's error replies.
 */
export function safeUrl(url: URL): string {
  return url.origin;
}

/** Printable one-line excerpt: control and format characters (incl. bidi overrides) become spaces. */
export function excerptOf(text: string, max = EXCERPT_CHARS): string {
  const clean = text
    .replace(/[\p{Cc}\p{Cf}\u2028\u2029]+/gu, " ")
    .replace(/\s+/g, " ")
    .trim();
  return clean.length > max ? clean.slice(0, max - 1) + "…" : clean;
}

function errorCode(e: unknown): string | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string") return code;
  if (e instanceof AggregateError) for (const inner of e.errors) if (errorCode(inner)) return errorCode(inner);
  return errorCode((e as { cause?: unknown }).cause);
}

function findForbidden(e: unknown): ForbiddenAddressError | undefined {
  if (e instanceof ForbiddenAddressError) return e;
  if (e instanceof AggregateError) for (const inner of e.errors) if (findForbidden(inner)) return findForbidden(inner);
  if (typeof e === "object" && e !== null) return findForbidden((e as { cause?: unknown }).cause);
  return undefined;
}

async function readCapped(body: Dispatcher.ResponseData["body"], cap: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      if (size + buf.length > cap) {
        chunks.push(buf.subarray(0, cap - size));
        truncated = true;
        break; // leaving the loop destroys the stream (and that connection): nothing more is read
      }
      chunks.push(buf);
      size += buf.length;
    }
  } catch {
    truncated = true; // the body broke off (timeout, reset): classify by the status with what arrived
  }
  return { text: Buffer.concat(chunks).toString("utf8"), truncated };
}

// The content type is not checked: many small bots answer JSON as text/plain or text/html, and a
// body that parses to an object with a string `reply` is unambiguous.
function replyOf(text: string): string | undefined {
  if (!text) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && "reply" in parsed) {
      const reply = (parsed as { reply: unknown }).reply;
      if (typeof reply === "string" && reply.length > 0) return reply;
    }
  } catch {
    /* not JSON: no reply */
  }
  return undefined;
}

function unescapeUserinfo(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part; // a stray "%" the URL parser kept as is
  }
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function createWebhookSender(opts: WebhookSenderOptions): WebhookSender {
  const resolve = opts.resolve ?? systemResolver;
  const cap = opts.maxResponseBytes ?? 64 * 1024;
  const agent = new Agent({
    connections: 16,
    pipelining: 1,
    keepAliveTimeout: 4_000,
    // `lookup` goes through to net/tls.connect: the socket connects to an address we checked, while
    // Host and TLS SNI stay the URL's host name (undici sets both from the origin).
    connect: { timeout: opts.timeoutMs, lookup: guardedLookup(opts.allowPrivate, resolve) },
    // undici runs these on coarse timers that can fire up to ~0.5 s early; the exact deadline is the
    // AbortSignal in send(), so these are only a backstop just behind it.
    headersTimeout: opts.timeoutMs + 1_000,
    bodyTimeout: opts.timeoutMs + 1_000,
  });

  async function send(rawUrl: string, secret: string, payload: WebhookPayload, signal?: AbortSignal): Promise<WebhookResult> {
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      return { kind: "permanent", status: 0, excerpt: "the webhook URL is not a valid URL" };
    }
    const where = safeUrl(url);
    if (url.protocol !== "http:" && url.protocol !== "https:") return { kind: "permanent", status: 0, excerpt: `${url.protocol} URLs are not supported` };
    // IP literals never reach `lookup` (net.connect skips it), so they are judged here.
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (!opts.allowPrivate) {
      const verdict = isIP(host) ? classifyAddress(host) : isLocalhostName(host) ? { allowed: false, range: "loopback (localhost)" } : { allowed: true, range: "" };
      if (!verdict.allowed) return forbidden(new ForbiddenAddressError(host, undefined, verdict.range));
    }

    const body = Buffer.from(JSON.stringify(payload), "utf8");
    const timestamp = String(Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": opts.userAgent ?? "Switchboard-Webhook/1",
      [TIMESTAMP_HEADER]: timestamp,
      [SIGNATURE_HEADER]: signPayload(secret, timestamp, body),
    };
    // https://user:pass@host/ is how many receivers (Alertmanager, CI) take Basic credentials.
    if (url.username || url.password) {
      headers["authorization"] = "Basic " + Buffer.from(`${unescapeUserinfo(url.username)}:${unescapeUserinfo(url.password)}`).toString("base64");
    }

    // One deadline for the whole exchange (undici's per-phase timeouts alone would let a receiver that
    // trickles bytes hold a worker forever), released when it ends: see src/core/util/abort.ts.
    const exchange = follow([signal], opts.timeoutMs);
    let res: Dispatcher.ResponseData;
    let text: string;
    try {
      res = await agent.request({ origin: url.origin, path: url.pathname + url.search, method: "POST", headers, body, signal: exchange.signal });
      ({ text } = await readCapped(res.body, cap));
    } catch (e) {
      const blocked = findForbidden(e);
      if (blocked) return forbidden(blocked);
      if (signal?.aborted) return { kind: "retry", reason: `cancelled (the gateway is stopping) while posting to ${where}` };
      const code = errorCode(e);
      if (timedOut(exchange.signal) || (code !== undefined && /TIMEOUT|ETIMEDOUT/.test(code))) {
        return { kind: "retry", reason: `no answer from ${where} within ${opts.timeoutMs} ms` };
      }
      if (code === "ECONNREFUSED") return { kind: "retry", reason: `connection refused by ${url.origin}` };
      if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "ENODATA") return { kind: "retry", reason: `DNS lookup of ${url.hostname} failed (${code})` };
      const what = e instanceof Error ? `${e.name}: ${excerptOf(e.message, 120)}` : "error";
      return { kind: "retry", reason: `request to ${where} failed (${code ?? what})` };
    } finally {
      exchange.release();
    }

    const status = res.statusCode;
    if (status >= 200 && status < 300) {
      const reply = replyOf(text);
      return reply === undefined ? { kind: "ok", status } : { kind: "ok", status, reply };
    }
    if (status >= 300 && status < 400) {
      let to = "";
      const location = header(res, "location");
      if (location) {
        try {
          const target = new URL(location, url);
          // Only for the answer (shown to the sender, never logged): the path helps fix the registration.
          to = ` (Location: ${target.origin + target.pathname})`;
        } catch {
          /* unreadable Location: leave it out */
        }
      }
      return { kind: "permanent", status, excerpt: `redirects are not followed${to}; register the final URL` };
    }
    const retryAfterMs = parseRetryAfter(header(res, "retry-after"));
    // 408 Request Timeout, 425 Too Early, 429 Too Many Requests: "try again later" (RFC 9110, RFC 8470, RFC 6585).
    if (status === 408 || status === 425 || status === 429 || status >= 500) {
      const reason = `HTTP ${status} from ${where}`;
      return retryAfterMs === undefined ? { kind: "retry", reason, status } : { kind: "retry", reason, status, retryAfterMs };
    }
    return { kind: "permanent", status, excerpt: excerptOf(text) }; // "" when the body is empty
  }

  return {
    send,
    async checkUrl(url: string): Promise<void> {
      await checkWebhookUrl(url, opts.allowPrivate, resolve);
    },
    async close(): Promise<void> {
      await agent.close();
    },
  };
}

/** No HTTP status exists for a refused address; status 0 marks "never sent". */
function forbidden(e: ForbiddenAddressError): WebhookResult {
  return { kind: "permanent", status: 0, excerpt: `not sent: ${e.message}` };
}
