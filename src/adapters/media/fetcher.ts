// Fetches inbound MMS media from the provider. With "Enforce HTTP Auth on Media URLs" the MediaUrl on
// api.twilio.com needs Basic auth with the account's credentials and answers with a redirect to a
// short-lived signed URL elsewhere (S3). Redirects are followed by hand so that the credentials go to
// the first request on the Twilio API origin and to nothing else: a signed URL needs none, and whoever
// hosts it must never see them.
//
// Whose credentials go where is the provider adapter's decision (MediaAccessPolicy; for Twilio:
// adapters/twilio/media-access.ts): a webhook names its media URLs itself, and whoever signed it may not
// be whom a URL belongs to.
import { isIP } from "node:net";
import { Agent, type Dispatcher } from "undici";
import { follow, timedOut } from "../../core/util/abort.js";
import { MediaFetchError, type FetchedMedia, type MediaAccess, type MediaAccessPolicy, type MediaFetcher, type MediaFetchOptions } from "../../core/flows/media.js";
import { classifyAddress, guardedLookup, isLocalhostName, systemResolver, type Resolver } from "../webhook/ssrf.js";

export interface MediaFetcherOptions {
  /** Which URLs are the provider's, and with whose credentials the first request goes. */
  access: MediaAccessPolicy;
  /** Bound on one fetch, redirects and body included. */
  timeoutMs: number;
  maxRedirects?: number;
  /**
   * Other origins (redirect targets, sandbox-injected URLs) may not reach private, loopback or
   * link-local addresses unless this is set (the SSRF guard of webhook targets). The provider's origin
   * is the operator's own setting and is trusted.
   */
  allowPrivate?: boolean;
  resolve?: Resolver;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Drops a body we will not read. undici reports a destroyed body as an error: nobody listens, so swallow it. */
function drop(body: Dispatcher.ResponseData["body"]): void {
  body.on("error", () => undefined);
  body.destroy();
}

function codeOf(e: unknown): string | undefined {
  for (let cur: unknown = e, i = 0; cur && i < 5; cur = (cur as { cause?: unknown }).cause, i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

export function createMediaFetcher(opts: MediaFetcherOptions): MediaFetcher & { close(): Promise<void> } {
  const maxRedirects = opts.maxRedirects ?? 3;
  const allowPrivate = opts.allowPrivate ?? false;
  const common = { connections: 8, keepAliveTimeout: 4_000, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs };
  const trusted = new Agent({ ...common, connect: { timeout: opts.timeoutMs } });
  const guarded = new Agent({ ...common, connect: { timeout: opts.timeoutMs, lookup: guardedLookup(allowPrivate, opts.resolve ?? systemResolver) } });

  async function fetchMedia(raw: string, o: MediaFetchOptions = {}): Promise<FetchedMedia> {
    // Released once the body is read or dropped, or the fetch fails (src/core/util/abort.ts).
    const fetching = follow([o.signal], opts.timeoutMs);
    try {
      return await fetchFollowing(raw, o.account, fetching.signal, fetching.release);
    } catch (e) {
      fetching.release();
      throw e;
    }
  }

  /** `bodyDone`: called once the returned body is closed (read to the end, dropped or failed). */
  async function fetchFollowing(raw: string, signer: string | undefined, combined: AbortSignal, bodyDone: () => void): Promise<FetchedMedia> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new MediaFetchError("not a valid URL", true);
    }
    for (let hop = 0; ; hop++) {
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new MediaFetchError(`${url.protocol} URLs are not fetched`, true);
      // The first request asks the provider's adapter; a redirect is never given credentials.
      const access: MediaAccess = hop === 0 ? await opts.access.access(url, signer) : { provider: opts.access.isProviderOrigin(url) };
      if ("refused" in access) throw new MediaFetchError(access.refused, true);
      const isProvider = access.provider;
      if (!isProvider && !allowPrivate) {
        // IP literals never reach the guarded lookup (net.connect skips it): judged here.
        const host = url.hostname.replace(/^\[|\]$/g, "");
        const verdict = isIP(host) ? classifyAddress(host) : isLocalhostName(host) ? { allowed: false, range: "loopback" } : { allowed: true, range: "" };
        if (!verdict.allowed) throw new MediaFetchError(`${url.hostname} is a ${verdict.range} address`, true);
      }
      const headers: Record<string, string> = { "user-agent": "Switchboard-Media/1", accept: "*/*" };
      const cred = "credentials" in access ? access.credentials : undefined;
      if (cred) headers.authorization = "Basic " + Buffer.from(`${cred.username}:${cred.password}`).toString("base64");
      let res: Dispatcher.ResponseData;
      try {
        res = await (isProvider ? trusted : guarded).request({ origin: url.origin, path: url.pathname + url.search, method: "GET", headers, signal: combined });
      } catch (e) {
        if (timedOut(combined)) throw new MediaFetchError(`no answer within ${opts.timeoutMs} ms`, false);
        const code = codeOf(e);
        const forbidden = code === "ERR_WEBHOOK_FORBIDDEN_ADDRESS";
        throw new MediaFetchError(forbidden ? `${url.hostname} resolves to a private address` : `request to ${url.host} failed (${code ?? "error"})`, forbidden);
      }
      const status = res.statusCode;
      const location = header(res, "location");
      if (REDIRECTS.has(status) && location) {
        drop(res.body);
        if (hop >= maxRedirects) throw new MediaFetchError(`more than ${maxRedirects} redirects`, true);
        try {
          url = new URL(location, url);
        } catch {
          throw new MediaFetchError("unreadable redirect", true);
        }
        continue;
      }
      if (status !== 200) {
        drop(res.body);
        // 404 right after the webhook can be media Twilio has not finished storing; 408/425/429/5xx pass.
        const permanent = status >= 400 && status < 500 && ![404, 408, 425, 429].includes(status);
        throw new MediaFetchError(`HTTP ${status}`, permanent); // no URL: this text reaches the user
      }
      const type = header(res, "content-type");
      const length = Number(header(res, "content-length"));
      const body = res.body;
      body.once("close", bodyDone);
      return {
        ...(type ? { contentType: type } : {}),
        ...(Number.isSafeInteger(length) && length >= 0 ? { length } : {}),
        body,
        discard: () => drop(body),
      };
    }
  }

  return {
    fetch: fetchMedia,
    async close() {
      await Promise.all([trusted.close(), guarded.close()]);
    },
  };
}
