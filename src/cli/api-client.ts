// The admin API over HTTP (fetch, i.e. undici). Problem answers (RFC 9457) become a CliError whose
// message is the problem's `detail`; an unreachable gateway says so and how to point at another one.
import { CliError, EXIT } from "./errors.js";

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  field?: string;
  [k: string]: unknown;
}

export interface ApiAnswer<T> {
  status: number;
  data: T;
}

/** What a plain GET got: an answer (any status), or why there was none. */
export type Probe = { answered: true; status: number; contentType: string; body: string } | { answered: false; code: string; message: string };

const DEFAULT_TIMEOUT_MS = 15_000;

/** The error code of a failed fetch (ECONNREFUSED, ENOTFOUND, UND_ERR_CONNECT_TIMEOUT, TimeoutError…). */
export function fetchErrorCode(e: unknown): string {
  let cur: unknown = e;
  for (let i = 0; i < 5 && typeof cur === "object" && cur !== null; i++) {
    const c = cur as { code?: unknown; name?: unknown; cause?: unknown; errors?: unknown };
    if (typeof c.code === "string") return c.code;
    if (c.name === "TimeoutError" || c.name === "AbortError") return "TIMEOUT";
    if (Array.isArray(c.errors) && c.errors.length > 0) cur = c.errors[0];
    else cur = c.cause;
  }
  return e instanceof Error ? e.name : "ERROR";
}

/** A GET that never throws: for health probes (doctor). `token`: sent as the admin bearer token. */
export async function probe(url: string, timeoutMs = 5000, token?: string): Promise<Probe> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "manual", headers: { accept: "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) } });
    return { answered: true, status: res.status, contentType: res.headers.get("content-type") ?? "", body: (await res.text()).slice(0, 64 * 1024) };
  } catch (e) {
    const code = fetchErrorCode(e);
    const message = code === "TIMEOUT" ? `no answer within ${Math.round(timeoutMs / 1000)} s` : e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e);
    return { answered: false, code, message };
  }
}

export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | undefined,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {}

  get hasToken(): boolean {
    return this.token !== undefined;
  }

  /** Sends one admin request; resolves for 2xx, throws CliError otherwise. */
  async request<T = unknown>(method: "GET" | "PUT" | "POST" | "DELETE", path: string, body?: unknown): Promise<ApiAnswer<T>> {
    if (!this.token) {
      throw new CliError("no admin token: set SWITCHBOARD_ADMIN_TOKEN (or ADMIN_TOKEN) in the environment or in .env", EXIT.usage);
    }
    const url = this.baseUrl + path;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        signal: AbortSignal.timeout(this.timeoutMs),
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: "application/json, application/problem+json",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (e) {
      const code = fetchErrorCode(e);
      if (code === "TIMEOUT") throw new CliError(`the gateway at ${this.baseUrl} did not answer within ${Math.round(this.timeoutMs / 1000)} s`);
      throw new CliError(`cannot reach the gateway at ${this.baseUrl} (${code}): is it running? Point at it with --url or SWITCHBOARD_URL.`);
    }
    const text = await res.text();
    let data: unknown = undefined;
    if (text) {
      try {
        data = JSON.parse(text) as unknown;
      } catch {
        data = text;
      }
    }
    if (res.ok) return { status: res.status, data: data as T };

    const problem: Problem =
      typeof data === "object" && data !== null && !Array.isArray(data)
        ? ({ ...(data as object), status: res.status } as Problem)
        : { status: res.status, title: res.statusText, ...(typeof data === "string" && data ? { detail: data.slice(0, 500) } : {}) };
    let message = problem.detail ?? problem.title ?? `HTTP ${res.status}`;
    if (res.status === 401) message += " The token comes from SWITCHBOARD_ADMIN_TOKEN (or ADMIN_TOKEN).";
    if (res.status === 404 && typeof problem.detail === "string" && problem.detail.startsWith("No route ")) {
      message += ` Is ${this.baseUrl} a Switchboard gateway of this version?`;
    }
    const retryAfter = res.headers.get("retry-after");
    if (retryAfter) message += ` (retry after ${retryAfter} s)`;
    throw new CliError(`${message} [HTTP ${res.status}]`, EXIT.failed, problem);
  }
}
