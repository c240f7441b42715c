// A fake Twilio REST API on a real socket, faithful where the gateway depends on the wire format:
// form-encoded creates with repeated keys, basic auth, Twilio's JSON error bodies and codes, and the
// message resource shape (snake_case, string counters, RFC 2822 dates), the Messages list (To, From and
// DateSent filters, PageSize/Page/PageToken paging with Twilio's page envelope, newest first) and fetch,
// a message's Media list, inbound texts that stay in the list when their webhook cannot be delivered (as
// at Twilio, which never redelivers them), and injectable trouble: error answers with Retry-After,
// silence, dropped connections before or after the message was stored. Plus helpers that build webhook
// parameter sets signed by the SDK's own signing function.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import twilio from "twilio";

export type FormValue = string | string[];

export interface RecordedRequest {
  method: string;
  path: string; // path + query, as received
  headers: IncomingHttpHeaders;
  form: Record<string, FormValue>;
  rawBody: string;
  at: number; // ms since epoch
}

/** The JSON message resource, as Twilio returns it. */
export interface FakeMessageResource {
  sid: string;
  account_sid: string;
  api_version: string;
  body: string;
  date_created: string;
  date_updated: string;
  date_sent: string | null;
  direction: "outbound-api" | "inbound";
  error_code: number | null;
  error_message: string | null;
  from: string | null;
  messaging_service_sid: string | null;
  num_media: string;
  num_segments: string;
  price: string | null;
  price_unit: string;
  status: string;
  subresource_uris: { media: string; feedback: string };
  to: string;
  uri: string;
}

/** An IncomingPhoneNumber resource (the fields the gateway reads, plus enough of the rest to look real). */
export interface FakeIncomingNumber {
  sid: string; // PN…
  account_sid: string;
  phone_number: string;
  friendly_name: string;
  sms_url: string;
  sms_method: string;
  /** A number in a Messaging Service carries the service's SID (MG…) here. */
  sms_application_sid: string;
  sms_fallback_url: string;
  sms_fallback_method: string;
  voice_url: string;
  voice_method: string;
  capabilities: { voice: boolean; sms: boolean; mms: boolean; fax: boolean };
  api_version: string;
  date_created: string;
  date_updated: string;
  status: string;
  origin: string;
  uri: string;
}

/** A Messaging Service resource (v1), the fields the gateway reads plus a few. */
export interface FakeMessagingService {
  sid: string; // MG…
  account_sid: string;
  friendly_name: string;
  inbound_request_url: string | null;
  inbound_method: string;
  fallback_url: string | null;
  status_callback: string | null;
  use_inbound_webhook_on_number: boolean;
  date_created: string;
  date_updated: string;
  url: string;
}

/**
 * An error answer (optionally with a Retry-After header), no answer ("hang"), a socket dropped before
 * anything was stored ("drop") or after the message was stored ("store-then-drop": Twilio created it,
 * the answer was lost), or the normal answer after a delay (`delayMs`: nothing is stored meanwhile;
 * `answerDelayMs`: stored at once, answered later, so its status callbacks can come first, as at Twilio).
 */
export type FakeFailure = { status: number; code?: number; message?: string; retryAfter?: string } | "hang" | "drop" | "store-then-drop" | { delayMs: number } | { answerDelayMs: number };

export interface FakeTwilio {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Every request received, in arrival order (creates, fetches, anything else). */
  requests: RecordedRequest[];
  /** Message resources created successfully. */
  created: FakeMessageResource[];
  /** Inbound message resources (receiveSms), whether or not their webhook got through. */
  received: FakeMessageResource[];
  /**
   * An inbound text reaches Twilio: it is stored (listed and fetched from now on, its media served) and
   * its signed webhook POSTed to `url` (default: the `to` number's sms_url, when it was added with
   * addNumber). A failed POST (the gateway is down) leaves it only in the list, as at Twilio.
   */
  receiveSms(p: FakeInboundInput): Promise<FakeInbound>;
  /** Moves a created message to `status` (with an error code), as Twilio does when the carrier reports, without any callback. */
  setStatus(sid: string, status: string, errorCode?: number): void;
  /** The next `n` creates answer `reply` (an error), never answer ("hang"), or lose the socket ("drop", "store-then-drop"). */
  failNext(n: number, reply: FakeFailure): void;
  /** The next `n` Messages list requests fail the same way ("store-then-drop" acts as "drop"). */
  failListNext(n: number, reply: FakeFailure): void;
  /** List requests received (GET …/Messages.json). */
  listRequests(): RecordedRequest[];
  waitForRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /**
   * Media the fake serves as Twilio does with "Enforce HTTP Auth on Media URLs": the MediaUrl
   * (/2010-04-01/Accounts/{Sid}/Messages/{MM…}/Media/{ME…}) needs Basic auth and redirects (307 by
   * default) to a "signed S3 URL" on the fake (/fake-s3/…) that serves the bytes without credentials.
   * `redirect: false` serves the bytes at the MediaUrl itself; `chunked` leaves out Content-Length.
   */
  addMedia(m: FakeMediaInput): FakeMedia;
  /** Requests for media: the MediaUrl ones and the signed ones. */
  mediaRequests(): RecordedRequest[];
  /** Gives an account a number (IncomingPhoneNumbers), optionally inside a Messaging Service. */
  addNumber(accountSid: string, phone: string, opts?: { messagingServiceSid?: string }): FakeIncomingNumber;
  /** The numbers as they stand now (updates through the API included), all or one account's. */
  numbers(accountSid?: string): FakeIncomingNumber[];
  /**
   * A Messaging Service (messaging.twilio.com/v1/Services/{MG…}) of an account, with its incoming-message
   * setting: a webhook URL, or "defer to sender's webhook" (use_inbound_webhook_on_number).
   */
  addMessagingService(accountSid: string, opts?: { sid?: string; inboundRequestUrl?: string | null; useInboundWebhookOnNumber?: boolean }): FakeMessagingService;
  reset(): void;
  stop(): Promise<void>;
}

const hex = (bytes: number): string => randomBytes(bytes).toString("hex");

export interface FakeInboundInput {
  from: string;
  to: string;
  body?: string;
  /** The account it arrives on; default: the fake's first account. */
  accountSid?: string;
  /** Each one served like addMedia's (Basic auth, then a redirect to a signed URL). */
  media?: { contentType: string; bytes: Buffer }[];
  /** When it reached Twilio (date_sent); default now. */
  at?: Date;
  /** Where the webhook goes; default: the number's sms_url. */
  url?: string;
  /** "receiving": an MMS Twilio is still taking in (no webhook yet); default "received". */
  status?: "received" | "receiving";
}

export interface FakeInbound {
  sid: string;
  resource: FakeMessageResource;
  media: FakeMedia[];
  /** Whether the webhook got a 2xx answer. */
  posted: boolean;
  /** The webhook's HTTP status, or the reason there was none. */
  answer: number | string;
}

export interface FakeMediaInput {
  accountSid: string;
  bytes: Buffer;
  contentType: string;
  messageSid?: string;
  redirect?: 301 | 302 | 303 | 307 | 308 | false;
  chunked?: boolean;
}

export interface FakeMedia {
  /** The MediaUrl Twilio would put in the webhook. */
  url: string;
  messageSid: string;
  mediaSid: string;
  /** Path of the signed URL the MediaUrl redirects to (undefined with redirect: false). */
  signedPath?: string;
}

/** Twilio's RFC 2822 dates: `Thu, 24 Aug 2023 05:01:45 +0000`. */
export function rfc2822(d: Date = new Date()): string {
  return d.toUTCString().replace(/GMT$/, "+0000");
}

function parseForm(raw: string): Record<string, FormValue> {
  const out: Record<string, FormValue> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

const first = (v: FormValue | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
const all = (v: FormValue | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

// Twilio accepts E.164 (with or without "+") and short codes; anything else is 21211.
const POSSIBLE_NUMBER = /^(\+?[1-9]\d{7,14}|\d{3,6})$/;

// GSM-7 basic set plus extension table, to count segments the way Twilio does (roughly: no smart encoding).
const GSM7 = new Set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà");
const GSM7_EXT = new Set("^{}\\[~]|€\f");

function segments(body: string): number {
  if (body === "") return 1;
  let septets = 0;
  let gsm = true;
  for (const ch of body) {
    if (GSM7.has(ch)) septets += 1;
    else if (GSM7_EXT.has(ch)) septets += 2;
    else gsm = false;
  }
  if (gsm) return septets <= 160 ? 1 : Math.ceil(septets / 153);
  return body.length <= 70 ? 1 : Math.ceil(body.length / 67);
}

// The codes Twilio puts in bodies of these statuses when nothing more specific applies.
const DEFAULT_CODES: Readonly<Record<number, { code: number; message: string }>> = {
  401: { code: 20003, message: "Authenticate" },
  404: { code: 20404, message: "The requested resource was not found" },
  429: { code: 20429, message: "Too Many Requests" },
  500: { code: 20500, message: "An internal server error has occurred" },
  503: { code: 20503, message: "Service unavailable" },
};

function twilioError(res: ServerResponse, status: number, code: number | null, message: string, extraHeaders: Record<string, string> = {}): void {
  const body = JSON.stringify({ code, message, more_info: code === null ? null : `https://www.twilio.com/docs/errors/${code}`, status });
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Twilio-Request-Id": "RQ" + hex(16), ...extraHeaders });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Twilio-Request-Id": "RQ" + hex(16) });
  res.end(JSON.stringify(value));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export interface FakeTwilioOptions {
  /** account sid → auth token */
  accounts: Record<string, string>;
  /** Keep every request and created message for inspection (default true). The benchmark turns it off. */
  keep?: boolean;
  /** Called with each message created (the benchmark counts and times them here). */
  onCreate?: (msg: FakeMessageResource) => void;
  /** Largest page the list serves (Twilio: 1000), to make a test page through a few messages. */
  maxPageSize?: number;
}

export async function startFakeTwilio(opts: FakeTwilioOptions): Promise<FakeTwilio> {
  const keep = opts.keep ?? true;
  const requests: RecordedRequest[] = [];
  const created: FakeMessageResource[] = [];
  const received: FakeMessageResource[] = [];
  /** Order of arrival, the tie-break of equal dates (RFC 2822 dates have whole seconds). */
  const seq = new WeakMap<FakeMessageResource, number>();
  let nextSeq = 0;
  const mediaOf = new Map<string, (FakeMedia & { contentType: string; accountSid: string })[]>(); // by message SID
  const maxPageSize = Math.min(1000, opts.maxPageSize ?? 1000);
  const failures: FakeFailure[] = [];
  const listFailures: FakeFailure[] = [];
  const waiters = new Set<() => void>();
  // Hung requests keep their response open until stop(), as a silent upstream would.
  const hung = new Set<ServerResponse>();
  const media = new Map<string, FakeMediaInput & FakeMedia>(); // by MediaUrl path
  const signed = new Map<string, FakeMediaInput>(); // by signed path

  const serveBytes = (res: ServerResponse, m: FakeMediaInput): void => {
    res.writeHead(200, { "Content-Type": m.contentType, ...(m.chunked ? {} : { "Content-Length": String(m.bytes.length) }) });
    if (m.chunked) {
      // Several writes without Content-Length: the reader can only count.
      for (let i = 0; i < m.bytes.length; i += 64 * 1024) res.write(m.bytes.subarray(i, i + 64 * 1024));
      res.end();
    } else res.end(m.bytes);
  };

  /** The authenticated account sid, or undefined after answering 401. */
  const authenticate = (req: IncomingMessage, res: ServerResponse): string | undefined => {
    const m = /^Basic (.+)$/i.exec(req.headers.authorization ?? "");
    const decoded = m?.[1] ? Buffer.from(m[1], "base64").toString("utf8") : "";
    const i = decoded.indexOf(":");
    const user = i >= 0 ? decoded.slice(0, i) : "";
    const pass = i >= 0 ? decoded.slice(i + 1) : "";
    const token = opts.accounts[user];
    if (token === undefined || token !== pass) {
      res.setHeader("WWW-Authenticate", 'Basic realm="Twilio API"');
      twilioError(res, 401, 20003, "Authenticate");
      return undefined;
    }
    return user;
  };

  const notFound = (res: ServerResponse, path: string): void => twilioError(res, 404, 20404, `The requested resource ${path} was not found`);

  /**
   * Validates and stores a create, then answers 201 — after `answer` ms when it is a number — or, when
   * `answer` is false, drops the connection instead.
   */
  const create = (res: ServerResponse, accountSid: string, form: Record<string, FormValue>, answer: boolean | number): void => {
    const to = first(form["To"]);
    const from = first(form["From"]);
    const serviceSid = first(form["MessagingServiceSid"]);
    const body = first(form["Body"]) ?? "";
    const media = all(form["MediaUrl"]);
    if (!to) return twilioError(res, 400, 21604, "A 'To' phone number is required.");
    if (!from && !serviceSid) return twilioError(res, 400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.");
    if (!body && media.length === 0) return twilioError(res, 400, 21602, "Message body is required.");
    if (!POSSIBLE_NUMBER.test(to)) return twilioError(res, 400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    if (body.length > 1600) return twilioError(res, 400, 21617, "The concatenated message body exceeds the 1600 character limit.");
    if (media.length > 10) return twilioError(res, 400, 21623, "The number of media files exceeds the limit of 10.");

    const sid = "SM" + hex(16);
    const now = rfc2822();
    const uri = `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`;
    const msg: FakeMessageResource = {
      sid,
      account_sid: accountSid,
      api_version: "2010-04-01",
      body,
      date_created: now,
      date_updated: now,
      date_sent: null,
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      // With a Messaging Service Twilio picks the sender later and starts in "accepted" with 0 segments.
      from: from ?? null,
      messaging_service_sid: serviceSid ?? null,
      num_media: String(media.length),
      num_segments: serviceSid && !from ? "0" : String(segments(body)),
      price: null,
      price_unit: "USD",
      status: serviceSid && !from ? "accepted" : "queued",
      subresource_uris: { media: uri.replace(/\.json$/, "/Media.json"), feedback: uri.replace(/\.json$/, "/Feedback.json") },
      to,
      uri,
    };
    if (keep) {
      created.push(msg);
      seq.set(msg, nextSeq++);
    }
    opts.onCreate?.(msg);
    if (typeof answer === "number") setTimeout(() => json(res, 201, msg), answer);
    else if (answer) json(res, 201, msg);
    else res.socket?.destroy(); // stored, but the answer is lost on the way
  };

  /** A message's date_sent (or, still queued, its creation) in ms: the list's order. */
  const sentAt = (m: FakeMessageResource): number => Date.parse(m.date_sent ?? m.date_created);
  /** The UTC date (YYYY-MM-DD) of a filter value or a message: Twilio documents DateSent filters as dates. */
  const utcDate = (v: string | number): string => new Date(typeof v === "number" ? v : Date.parse(v)).toISOString().slice(0, 10);

  /**
   * GET Messages.json: Twilio's list resource. Filters To, From, DateSent (that day), DateSent< and
   * DateSent> (on or before / on or after that day: only the date part counts, as Twilio documents them,
   * so a reader must check the times itself; a message without date_sent matches no DateSent filter).
   * Newest first; PageSize (default 50, at most 1000 or maxPageSize); Page, or PageToken (PA + the SID of
   * the previous page's last message, so texts arriving meanwhile do not shift the pages).
   */
  const list = (res: ServerResponse, accountSid: string, url: URL): void => {
    const q = url.searchParams;
    const to = q.get("To");
    const from = q.get("From");
    const on = q.get("DateSent");
    const before = q.get("DateSent<");
    const after = q.get("DateSent>");
    const pageSize = Math.min(maxPageSize, Math.max(1, Number(q.get("PageSize") ?? 50) || 50));
    const page = Math.max(0, Number(q.get("Page") ?? 0) || 0);
    const token = q.get("PageToken");
    const dated = on !== null || before !== null || after !== null;
    const matching = [...created, ...received]
      .filter((m) => m.account_sid === accountSid && (to === null || m.to === to) && (from === null || m.from === from))
      .filter((m) => {
        if (!dated) return true;
        if (m.date_sent === null) return false;
        const day = utcDate(m.date_sent);
        return (on === null || day === utcDate(on)) && (before === null || day <= utcDate(before)) && (after === null || day >= utcDate(after));
      })
      .sort((a, b) => sentAt(b) - sentAt(a) || (seq.get(b) ?? 0) - (seq.get(a) ?? 0));
    const afterToken = token?.startsWith("PA") ? matching.findIndex((m) => m.sid === token.slice(2)) : -1;
    const offset = afterToken >= 0 ? afterToken + 1 : page * pageSize;
    const slice = matching.slice(offset, offset + pageSize);
    const pageUri = (p: number, pageToken?: string): string => {
      const u = new URLSearchParams();
      for (const k of ["To", "From", "DateSent", "DateSent<", "DateSent>"]) {
        const v = q.get(k);
        if (v !== null) u.set(k, v);
      }
      u.set("PageSize", String(pageSize));
      u.set("Page", String(p));
      if (pageToken) u.set("PageToken", pageToken);
      return `${url.pathname}?${u.toString()}`;
    };
    const last = slice[slice.length - 1];
    json(res, 200, {
      first_page_uri: pageUri(0),
      end: offset + Math.max(0, slice.length - 1),
      previous_page_uri: page > 0 ? pageUri(page - 1, slice[0] ? `PB${slice[0].sid}` : undefined) : null,
      messages: slice,
      uri: pageUri(page, token ?? undefined),
      page_size: pageSize,
      start: offset,
      next_page_uri: last && offset + pageSize < matching.length ? pageUri(page + 1, `PA${last.sid}`) : null,
      page,
    });
  };

  /** GET Messages/{SID}/Media.json: the message's media resources (Twilio's `media_list`). */
  const listMedia = (res: ServerResponse, accountSid: string, messageSid: string, url: URL): void => {
    const items = (mediaOf.get(messageSid) ?? []).filter((m) => m.accountSid === accountSid);
    const base = `/2010-04-01/Accounts/${accountSid}/Messages/${messageSid}/Media`;
    const now = rfc2822();
    const pageSize = Math.min(1000, Math.max(1, Number(url.searchParams.get("PageSize") ?? 50) || 50));
    const uri = `${base}.json?PageSize=${pageSize}&Page=0`;
    json(res, 200, {
      first_page_uri: uri,
      end: Math.max(0, items.length - 1),
      media_list: items.map((m) => ({
        account_sid: accountSid,
        content_type: m.contentType,
        date_created: now,
        date_updated: now,
        parent_sid: messageSid,
        sid: m.mediaSid,
        uri: `${base}/${m.mediaSid}.json`,
      })),
      next_page_uri: null,
      page: 0,
      page_size: pageSize,
      previous_page_uri: null,
      start: 0,
      uri,
    });
  };

  /**
   * Plays an injected failure; true when it answered (or dropped) the request. Synchronous on purpose:
   * a request is recorded and, without a failure, stored in the same tick, so a test that saw the
   * request also sees the message.
   */
  const playFailure = (failure: FakeFailure | undefined, req: IncomingMessage, res: ServerResponse): boolean => {
    if (failure === undefined || failure === "store-then-drop" || (typeof failure === "object" && "answerDelayMs" in failure)) return false;
    if (failure === "hang") {
      hung.add(res);
      res.on("close", () => hung.delete(res));
      return true;
    }
    if (failure === "drop") {
      req.socket.destroy();
      return true;
    }
    if ("delayMs" in failure) return false; // the caller waits, then answers normally
    const dflt = DEFAULT_CODES[failure.status];
    twilioError(
      res,
      failure.status,
      failure.code ?? dflt?.code ?? null,
      failure.message ?? dflt?.message ?? `HTTP ${failure.status}`,
      failure.retryAfter !== undefined ? { "Retry-After": failure.retryAfter } : {},
    );
    return true;
  };

  const incoming: FakeIncomingNumber[] = [];
  const services: FakeMessagingService[] = [];

  /** GET IncomingPhoneNumbers.json: PhoneNumber is a pattern at Twilio (digits, '*' wildcards); here a digits substring. */
  const listNumbers = (res: ServerResponse, accountSid: string, url: URL): void => {
    const pattern = (url.searchParams.get("PhoneNumber") ?? "").replace(/\D/g, "");
    const pageSize = Math.min(1000, Math.max(1, Number(url.searchParams.get("PageSize") ?? 50) || 50));
    const matching = incoming.filter((n) => n.account_sid === accountSid && n.phone_number.replace(/\D/g, "").includes(pattern)).slice(0, pageSize);
    const uri = `${url.pathname}?${url.searchParams.toString()}`;
    json(res, 200, {
      first_page_uri: uri,
      end: Math.max(0, matching.length - 1),
      previous_page_uri: null,
      incoming_phone_numbers: matching,
      uri,
      page_size: pageSize,
      start: 0,
      next_page_uri: null,
      page: 0,
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawBody = await readBody(req);
    const path = req.url ?? "/";
    const isForm = (req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded");
    const rec: RecordedRequest = { method: req.method ?? "GET", path, headers: req.headers, form: isForm ? parseForm(rawBody) : {}, rawBody, at: Date.now() };
    if (keep) requests.push(rec);
    for (const w of [...waiters]) w();

    const pathname = new URL(path, "http://fake").pathname;
    const createMatch = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(pathname);
    const fetchMatch = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\.json$/.exec(pathname);

    if (createMatch && req.method === "POST") {
      const failure = failures.shift();
      if (typeof failure === "object" && "delayMs" in failure) await new Promise((r) => setTimeout(r, failure.delayMs));
      else if (playFailure(failure, req, res)) return;
      const account = authenticate(req, res);
      if (account === undefined) return;
      if (createMatch[1] !== account) return notFound(res, pathname);
      return create(res, account, rec.form, typeof failure === "object" && "answerDelayMs" in failure ? failure.answerDelayMs : failure !== "store-then-drop");
    }
    // The account's message log as CSV, as Twilio serves list resources with a .csv extension: what a
    // media fetch must never be tricked into fetching with an account's credentials.
    const csvMatch = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.csv$/.exec(pathname);
    if (csvMatch && req.method === "GET") {
      const account = authenticate(req, res);
      if (account === undefined) return;
      if (csvMatch[1] !== account) return notFound(res, pathname);
      const quote = (v: string | null) => `"${(v ?? "").replace(/"/g, '""')}"`;
      const rows = created.filter((m) => m.account_sid === account).map((m) => [m.sid, m.from, m.to, m.body, m.status, m.date_created].map(quote).join(","));
      res.writeHead(200, { "Content-Type": "text/csv; charset=utf-8" });
      res.end(["Sid,From,To,Body,Status,DateCreated", ...rows].join("\n"));
      return;
    }
    if (createMatch && req.method === "GET") {
      const failure = listFailures.shift();
      if (typeof failure === "object" && "delayMs" in failure) await new Promise((r) => setTimeout(r, failure.delayMs));
      else if (playFailure(failure === "store-then-drop" ? "drop" : failure, req, res)) return;
      const account = authenticate(req, res);
      if (account === undefined) return;
      if (createMatch[1] !== account) return notFound(res, pathname);
      return list(res, account, new URL(path, "http://fake"));
    }
    if (fetchMatch && req.method === "GET") {
      const account = authenticate(req, res);
      if (account === undefined) return;
      const msg = [...created, ...received].find((m) => m.sid === fetchMatch[2] && m.account_sid === fetchMatch[1] && m.account_sid === account);
      return msg ? json(res, 200, msg) : notFound(res, pathname);
    }
    const mediaListMatch = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\/Media\.json$/.exec(pathname);
    if (mediaListMatch && req.method === "GET") {
      const account = authenticate(req, res);
      if (account === undefined) return;
      if (mediaListMatch[1] !== account) return notFound(res, pathname);
      return listMedia(res, account, mediaListMatch[2]!, new URL(path, "http://fake"));
    }
    const numbersMatch = /^\/2010-04-01\/Accounts\/([^/]+)\/IncomingPhoneNumbers\.json$/.exec(pathname);
    const numberMatch = /^\/2010-04-01\/Accounts\/([^/]+)\/IncomingPhoneNumbers\/([^/]+)\.json$/.exec(pathname);
    if ((numbersMatch && req.method === "GET") || (numberMatch && req.method === "POST")) {
      const account = authenticate(req, res);
      if (account === undefined) return;
      if ((numbersMatch ?? numberMatch)![1] !== account) return notFound(res, pathname);
      if (numbersMatch) return listNumbers(res, account, new URL(path, "http://fake"));
      const n = incoming.find((x) => x.sid === numberMatch![2] && x.account_sid === account);
      if (!n) return notFound(res, pathname);
      // Only the fields Twilio lets you update that the gateway uses; others are accepted and ignored.
      const smsUrl = first(rec.form["SmsUrl"]);
      const smsMethod = first(rec.form["SmsMethod"]);
      if (smsUrl !== undefined) n.sms_url = smsUrl;
      if (smsMethod !== undefined) n.sms_method = smsMethod.toUpperCase();
      n.date_updated = rfc2822();
      return json(res, 200, n);
    }
    // The account itself (GET /2010-04-01/Accounts/{Sid}.json): how a client checks its credentials.
    const accountMatch = /^\/2010-04-01\/Accounts\/([^/]+)\.json$/.exec(pathname);
    if (accountMatch && req.method === "GET") {
      const account = authenticate(req, res);
      if (account === undefined) return;
      if (accountMatch[1] !== account) return notFound(res, pathname);
      const since = rfc2822(new Date(Date.UTC(2020, 0, 1)));
      return json(res, 200, {
        sid: account,
        friendly_name: "My first Twilio account",
        owner_account_sid: account,
        status: "active",
        type: "Full",
        auth_token: opts.accounts[account],
        date_created: since,
        date_updated: since,
        uri: `/2010-04-01/Accounts/${account}.json`,
        subresource_uris: { incoming_phone_numbers: `/2010-04-01/Accounts/${account}/IncomingPhoneNumbers.json`, messages: `/2010-04-01/Accounts/${account}/Messages.json` },
      });
    }
    // Messaging Services live on messaging.twilio.com (v1, no .json suffix); the base-URL override sends them here too.
    const serviceMatch = /^\/v1\/Services\/([^/]+)$/.exec(pathname);
    if (serviceMatch && req.method === "GET") {
      const account = authenticate(req, res);
      if (account === undefined) return;
      const service = services.find((x) => x.sid === serviceMatch[1] && x.account_sid === account);
      return service ? json(res, 200, service) : notFound(res, pathname);
    }
    const signedMedia = signed.get(pathname);
    if (signedMedia && req.method === "GET") return serveBytes(res, signedMedia); // the signature in the query is the key: no auth
    const m = media.get(pathname);
    if (m && req.method === "GET") {
      const account = authenticate(req, res);
      if (account === undefined) return;
      if (account !== m.accountSid) return notFound(res, pathname);
      if (m.redirect === false || !m.signedPath) return serveBytes(res, m);
      res.writeHead(m.redirect ?? 307, { Location: `${m.signedPath}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=14400&X-Amz-Signature=${hex(32)}` });
      return void res.end();
    }
    if (!authenticate(req, res)) return;
    return notFound(res, pathname);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) twilioError(res, 500, 20500, `fake Twilio failed: ${String(err)}`);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const addMedia = (input: FakeMediaInput): FakeMedia => {
    const messageSid = input.messageSid ?? "MM" + hex(16);
    const mediaSid = "ME" + hex(16);
    const path = `/2010-04-01/Accounts/${input.accountSid}/Messages/${messageSid}/Media/${mediaSid}`;
    const signedPath = input.redirect === false ? undefined : `/fake-s3/media/${hex(16)}`;
    const entry = { ...input, url: `http://127.0.0.1:${port}${path}`, messageSid, mediaSid, ...(signedPath ? { signedPath } : {}) };
    media.set(path, entry);
    if (signedPath) signed.set(signedPath, input);
    const made: FakeMedia = { url: entry.url, messageSid, mediaSid, ...(signedPath ? { signedPath } : {}) };
    mediaOf.set(messageSid, [...(mediaOf.get(messageSid) ?? []), { ...made, contentType: input.contentType, accountSid: input.accountSid }]);
    return made;
  };

  const receiveSms = async (p: FakeInboundInput): Promise<FakeInbound> => {
    const accountSid = p.accountSid ?? Object.keys(opts.accounts)[0]!;
    const token = opts.accounts[accountSid];
    if (token === undefined) throw new Error(`fake Twilio: no account ${accountSid}`);
    const body = p.body ?? "";
    const items = p.media ?? [];
    const sid = (items.length > 0 ? "MM" : "SM") + hex(16);
    const at = rfc2822(p.at ?? new Date());
    const uri = `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`;
    const resource: FakeMessageResource = {
      sid,
      account_sid: accountSid,
      api_version: "2010-04-01",
      body,
      date_created: at,
      date_updated: at,
      date_sent: at,
      direction: "inbound",
      error_code: null,
      error_message: null,
      from: p.from,
      messaging_service_sid: null,
      num_media: String(items.length),
      num_segments: String(segments(body)),
      price: null,
      price_unit: "USD",
      status: p.status ?? "received",
      subresource_uris: { media: uri.replace(/\.json$/, "/Media.json"), feedback: uri.replace(/\.json$/, "/Feedback.json") },
      to: p.to,
      uri,
    };
    received.push(resource);
    seq.set(resource, nextSeq++);
    const made = items.map((m) => addMedia({ accountSid, bytes: m.bytes, contentType: m.contentType, messageSid: sid }));
    const target = p.url ?? incoming.find((n) => n.account_sid === accountSid && n.phone_number === p.to)?.sms_url;
    if (!target || resource.status === "receiving") return { sid, resource, media: made, posted: false, answer: target ? "still receiving" : "no webhook URL" };
    const params = inboundSmsParams({ from: p.from, to: p.to, body, accountSid, sid, media: made.map((m, i) => ({ url: m.url, contentType: items[i]!.contentType })) });
    try {
      // Twilio's own default: 15 s for the whole request (docs/facts/twilio.md "Webhook signatures and delivery").
      const res = await fetch(target.split("#")[0]!, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signTwilioRequest(token, target, params) },
        body: new URLSearchParams(params).toString(),
        signal: AbortSignal.timeout(15_000),
      });
      await res.arrayBuffer();
      return { sid, resource, media: made, posted: res.ok, answer: res.status };
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      return { sid, resource, media: made, posted: false, answer: cause?.code ?? (err instanceof Error ? err.message : String(err)) };
    }
  };

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    created,
    received,
    receiveSms,
    setStatus(sid: string, status: string, errorCode?: number): void {
      const m = created.find((x) => x.sid === sid);
      if (!m) throw new Error(`fake Twilio: no created message ${sid}`);
      m.status = status;
      m.date_updated = rfc2822();
      if (m.date_sent === null && status !== "queued" && status !== "accepted" && status !== "scheduled") m.date_sent = m.date_updated;
      if (errorCode !== undefined) {
        m.error_code = errorCode;
        m.error_message = `Error ${errorCode}`;
      }
    },
    failNext(n: number, reply: FakeFailure): void {
      for (let i = 0; i < n; i++) failures.push(reply);
    },
    failListNext(n: number, reply: FakeFailure): void {
      for (let i = 0; i < n; i++) listFailures.push(reply);
    },
    listRequests(): RecordedRequest[] {
      return requests.filter((r) => r.method === "GET" && /\/Messages\.json(\?|$)/.test(r.path));
    },
    waitForRequests(count: number, timeoutMs = 2000): Promise<RecordedRequest[]> {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (requests.length < count) return false;
          clearTimeout(timer);
          waiters.delete(onRequest);
          resolve([...requests]);
          return true;
        };
        const onRequest = (): void => void check();
        const timer = setTimeout(() => {
          waiters.delete(onRequest);
          reject(new Error(`fake Twilio: ${requests.length} of ${count} requests after ${timeoutMs} ms`));
        }, timeoutMs);
        if (!check()) waiters.add(onRequest);
      });
    },
    addNumber(accountSid: string, phone: string, o: { messagingServiceSid?: string } = {}): FakeIncomingNumber {
      const sid = "PN" + hex(16);
      const now = rfc2822();
      const n: FakeIncomingNumber = {
        sid,
        account_sid: accountSid,
        phone_number: phone,
        friendly_name: phone,
        sms_url: "https://demo.twilio.com/welcome/sms/reply",
        sms_method: "POST",
        sms_application_sid: o.messagingServiceSid ?? "",
        sms_fallback_url: "",
        sms_fallback_method: "POST",
        voice_url: "",
        voice_method: "POST",
        capabilities: { voice: true, sms: true, mms: true, fax: false },
        api_version: "2010-04-01",
        date_created: now,
        date_updated: now,
        status: "in-use",
        origin: "twilio",
        uri: `/2010-04-01/Accounts/${accountSid}/IncomingPhoneNumbers/${sid}.json`,
      };
      incoming.push(n);
      return n;
    },
    numbers(accountSid?: string): FakeIncomingNumber[] {
      return incoming.filter((n) => accountSid === undefined || n.account_sid === accountSid);
    },
    addMessagingService(accountSid: string, o: { sid?: string; inboundRequestUrl?: string | null; useInboundWebhookOnNumber?: boolean } = {}): FakeMessagingService {
      const sid = o.sid ?? "MG" + hex(16);
      const now = rfc2822();
      const service: FakeMessagingService = {
        sid,
        account_sid: accountSid,
        friendly_name: `Service ${sid.slice(-4)}`,
        inbound_request_url: o.inboundRequestUrl ?? null,
        inbound_method: "POST",
        fallback_url: null,
        status_callback: null,
        use_inbound_webhook_on_number: o.useInboundWebhookOnNumber ?? false,
        date_created: now,
        date_updated: now,
        url: `https://messaging.twilio.com/v1/Services/${sid}`,
      };
      services.push(service);
      return service;
    },
    addMedia,
    mediaRequests(): RecordedRequest[] {
      return requests.filter((r) => /\/Media\/ME[0-9a-f]+$|^\/fake-s3\//.test(r.path.split("?")[0] ?? ""));
    },
    reset(): void {
      requests.length = 0;
      created.length = 0;
      received.length = 0;
      failures.length = 0;
      listFailures.length = 0;
    },
    async stop(): Promise<void> {
      for (const res of hung) res.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** The X-Twilio-Signature Twilio would send for this URL and POST parameters. */
export function signTwilioRequest(authToken: string, url: string, params: Record<string, FormValue>): string {
  return twilio.getExpectedTwilioSignature(authToken, url, params);
}

const countryOf = (n: string): string => (n.startsWith("+1") ? "US" : "");

/** Parameters of Twilio's inbound SMS/MMS webhook (docs/facts/twilio.md "Webhook payloads"), as posted to the gateway. */
export function inboundSmsParams(p: {
  from: string;
  to: string;
  body: string;
  accountSid: string;
  sid?: string;
  media?: { url: string; contentType: string }[];
  messagingServiceSid?: string;
}): Record<string, string> {
  const media = p.media ?? [];
  const sid = p.sid ?? (media.length > 0 ? "MM" : "SM") + hex(16);
  const params: Record<string, string> = {
    ToCountry: countryOf(p.to),
    ToState: "",
    SmsMessageSid: sid,
    NumMedia: String(media.length),
    ToCity: "",
    FromZip: "",
    SmsSid: sid,
    FromState: "",
    SmsStatus: "received",
    FromCity: "",
    Body: p.body,
    FromCountry: countryOf(p.from),
    To: p.to,
    ToZip: "",
    NumSegments: String(segments(p.body)),
    ReferralNumMedia: "0",
    MessageSid: sid,
    AccountSid: p.accountSid,
    From: p.from,
    ApiVersion: "2010-04-01",
  };
  if (p.messagingServiceSid) params["MessagingServiceSid"] = p.messagingServiceSid;
  media.forEach((m, i) => {
    params[`MediaContentType${i}`] = m.contentType;
    params[`MediaUrl${i}`] = m.url;
  });
  return params;
}

/** Parameters of a message status callback (docs/facts/twilio.md "Webhook payloads"). `ErrorCode` only for failed/undelivered. */
export function statusCallbackParams(p: { sid: string; status: string; from: string; to: string; accountSid: string; errorCode?: number }): Record<string, string> {
  const params: Record<string, string> = {
    SmsSid: p.sid,
    SmsStatus: p.status,
    MessageStatus: p.status,
    To: p.to,
    MessageSid: p.sid,
    AccountSid: p.accountSid,
    From: p.from,
    ApiVersion: "2010-04-01",
  };
  if (p.errorCode !== undefined) params["ErrorCode"] = String(p.errorCode);
  return params;
}
