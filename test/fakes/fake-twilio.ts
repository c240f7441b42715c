// A fake Twilio REST API on a real socket, faithful where the gateway depends on the wire format:
// form-encoded creates with repeated keys, basic auth, Twilio's JSON error bodies and codes, and the
// message resource shape (snake_case, string counters, RFC 2822 dates). Plus helpers that build
// webhook parameter sets signed by the SDK's own signing function.
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
  direction: "outbound-api";
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

/** An error answer, no answer ("hang"), a dropped socket, or the normal answer after a delay. */
export type FakeFailure = { status: number; code?: number; message?: string } | "hang" | "drop" | { delayMs: number };

export interface FakeTwilio {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Every request received, in arrival order (creates, fetches, anything else). */
  requests: RecordedRequest[];
  /** Message resources created successfully. */
  created: FakeMessageResource[];
  /** The next `n` creates answer `reply` (an error), never answer ("hang"), or lose the socket ("drop"). */
  failNext(n: number, reply: FakeFailure): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  reset(): void;
  stop(): Promise<void>;
}

const hex = (bytes: number): string => randomBytes(bytes).toString("hex");

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

function twilioError(res: ServerResponse, status: number, code: number | null, message: string): void {
  const body = JSON.stringify({ code, message, more_info: code === null ? null : `https://www.twilio.com/docs/errors/${code}`, status });
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Twilio-Request-Id": "RQ" + hex(16) });
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

export async function startFakeTwilio(opts: { accounts: Record<string, string> }): Promise<FakeTwilio> {
  const requests: RecordedRequest[] = [];
  const created: FakeMessageResource[] = [];
  const failures: FakeFailure[] = [];
  const waiters = new Set<() => void>();
  // Hung requests keep their response open until stop(), as a silent upstream would.
  const hung = new Set<ServerResponse>();

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

  const create = (res: ServerResponse, accountSid: string, form: Record<string, FormValue>): void => {
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
    created.push(msg);
    json(res, 201, msg);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawBody = await readBody(req);
    const path = req.url ?? "/";
    const isForm = (req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded");
    const rec: RecordedRequest = { method: req.method ?? "GET", path, headers: req.headers, form: isForm ? parseForm(rawBody) : {}, rawBody, at: Date.now() };
    requests.push(rec);
    for (const w of [...waiters]) w();

    const pathname = new URL(path, "http://fake").pathname;
    const createMatch = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(pathname);
    const fetchMatch = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\.json$/.exec(pathname);

    if (createMatch && req.method === "POST") {
      const failure = failures.shift();
      if (failure === "hang") {
        hung.add(res);
        res.on("close", () => hung.delete(res));
        return;
      }
      if (failure === "drop") {
        req.socket.destroy();
        return;
      }
      if (failure && "delayMs" in failure) {
        await new Promise((r) => setTimeout(r, failure.delayMs));
      } else if (failure) {
        const dflt = DEFAULT_CODES[failure.status];
        return twilioError(res, failure.status, failure.code ?? dflt?.code ?? null, failure.message ?? dflt?.message ?? `HTTP ${failure.status}`);
      }
      const account = authenticate(req, res);
      if (account === undefined) return;
      if (createMatch[1] !== account) return notFound(res, pathname);
      return create(res, account, rec.form);
    }
    if (fetchMatch && req.method === "GET") {
      const account = authenticate(req, res);
      if (account === undefined) return;
      const msg = created.find((m) => m.sid === fetchMatch[2] && m.account_sid === fetchMatch[1] && m.account_sid === account);
      return msg ? json(res, 200, msg) : notFound(res, pathname);
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

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    created,
    failNext(n: number, reply: FakeFailure): void {
      for (let i = 0; i < n; i++) failures.push(reply);
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
    reset(): void {
      requests.length = 0;
      created.length = 0;
      failures.length = 0;
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

/** Parameters of Twilio's inbound SMS/MMS webhook (FACTS A4), as posted to the gateway. */
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

/** Parameters of a message status callback (FACTS A4). `ErrorCode` only for failed/undelivered. */
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
