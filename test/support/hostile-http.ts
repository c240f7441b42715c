// Hostile HTTP requests for the gateway's routes (fast-check arbitraries), and the one rule every
// answer must follow: 2xx, or a 4xx problem (application/problem+json with its status), never 5xx.
// Shared by test/integration/hostile-http.test.ts and the long fuzz run (fuzz/fuzz.ts).
import assert from "node:assert/strict";
import fc from "fast-check";
import type { FastifyInstance } from "fastify";
import { inboundSmsParams, signTwilioRequest, statusCallbackParams } from "../fakes/fake-twilio.js";
import { encodeForm, hostileJson, hostileText, jidLike, longText, mutatedForm, phoneLike, type FormValue } from "./hostile.js";

export interface HttpFuzzContext {
  /** PUBLIC_URL, which Twilio signs. */
  publicUrl: string;
  twilioToken: string;
  accountSid: string;
  /** Inbound MMS media URLs to choose from (a fake Twilio's or a dead port's: never the internet). */
  mediaUrls: { url: string; contentType: string }[];
  adminToken: string;
  /** The number linked to the test user, and the user. */
  userNumber: string;
  userJid: string;
  /** A webhook target allowed to message `userJid`, and its token. */
  webhookName: string;
  webhookToken: () => string;
  /** Where generated webhook target URLs point (a local sink or a dead port: never the internet). */
  webhookUrl: string;
  /** HTTP_BODY_LIMIT */
  bodyLimit: number;
}

export interface HttpCase {
  category: "twilio-sms" | "twilio-status" | "admin" | "message-in" | "body-limit";
  method: string;
  url: string;
  headers: Record<string, string | string[]>;
  payload?: string | Buffer;
}

/** Bytes of `s` as UTF-8, every byte that is not unreserved percent-encoded (lone surrogates too). */
export function pathSegment(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9._~+-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const rawOrEncoded = (s: fc.Arbitrary<string>) =>
  fc.oneof({ weight: 4, arbitrary: s.map(pathSegment) }, { weight: 1, arbitrary: fc.constantFrom("%", "%zz", "..", "%2F", "a%00b", "%C0%AF", "%ED%A0%80") });

function twilioSms(ctx: HttpFuzzContext): fc.Arbitrary<HttpCase> {
  const base = fc
    .tuple(
      fc.oneof(phoneLike, fc.constantFrom("+15552223333", "72975", "Amazon")),
      fc.oneof({ weight: 4, arbitrary: fc.constant(ctx.userNumber) }, { weight: 1, arbitrary: phoneLike }),
      hostileText(),
      fc.oneof(
        { weight: 3, arbitrary: fc.constant<{ url: string; contentType: string }[]>([]) },
        { weight: 1, arbitrary: fc.array(fc.constantFrom(...ctx.mediaUrls), { minLength: 1, maxLength: 3 }) },
      ),
    )
    .map(([from, to, body, media]) => inboundSmsParams({ from, to, body, accountSid: ctx.accountSid, media }));
  return fc
    .tuple(
      base.chain((b) => mutatedForm(b, { longMax: 20_000 })),
      fc.constantFrom("good", "good", "good", "good", "good", "good", "bad", "none", "repeated"),
      fc.constantFrom("form", "form", "form", "form", "form", "json", "text", "none"),
    )
    .map(([form, sig, ctype]) => twilioRequest(ctx, "/twilio/sms", form, sig, ctype, "twilio-sms"));
}

function twilioStatus(ctx: HttpFuzzContext): fc.Arbitrary<HttpCase> {
  const base = fc
    .tuple(
      fc.oneof(fc.constantFrom("SM" + "a".repeat(32), "SMnope"), hostileText(20)),
      fc.oneof(fc.constantFrom("queued", "sent", "delivered", "undelivered", "failed", "read", "canceled", "DELIVERED"), hostileText(10)),
      fc.option(fc.oneof(fc.constantFrom(30003, 21610, 0, -1), fc.integer()), { nil: undefined }),
    )
    .map(([sid, status, errorCode]) => statusCallbackParams({ sid, status, from: ctx.userNumber, to: "+15552223333", accountSid: ctx.accountSid, ...(errorCode === undefined ? {} : { errorCode }) }));
  const query = fc.oneof(
    fc.constant(""),
    fc.constantFrom("?id=01JABCDEFGHJKMNPQRSTVWXYZ0", "?id=", "?id=a&id=b", "?x=1"),
    hostileText(20).map((s) => `?id=${pathSegment(s)}`),
    longText(100, 5000).map((s) => `?id=${pathSegment(s)}`),
  );
  return fc
    .tuple(
      base.chain((b) => mutatedForm(b, { longMax: 20_000 })),
      query,
      fc.constantFrom("good", "good", "good", "bad", "none"),
      fc.constantFrom("form", "form", "form", "json", "none"),
    )
    .map(([form, q, sig, ctype]) => twilioRequest(ctx, `/twilio/status${q}`, form, sig, ctype, "twilio-status"));
}

function twilioRequest(ctx: HttpFuzzContext, path: string, form: Record<string, FormValue>, sig: string, ctype: string, category: HttpCase["category"]): HttpCase {
  let signature: string | undefined;
  try {
    signature = signTwilioRequest(ctx.twilioToken, ctx.publicUrl + path, form);
  } catch {
    signature = undefined;
  }
  const headers: Record<string, string | string[]> = {};
  if (sig === "good" && signature) headers["x-twilio-signature"] = signature;
  if (sig === "bad") headers["x-twilio-signature"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  if (sig === "repeated" && signature) headers["x-twilio-signature"] = [signature, signature];
  let payload: string | undefined;
  if (ctype === "form") {
    headers["content-type"] = "application/x-www-form-urlencoded";
    payload = encodeForm(form);
  } else if (ctype === "json") {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(form);
  } else if (ctype === "text") {
    headers["content-type"] = "text/plain";
    payload = encodeForm(form);
  }
  return { category, method: "POST", url: path, headers, ...(payload === undefined ? {} : { payload }) };
}

function adminCase(ctx: HttpFuzzContext): fc.Arbitrary<HttpCase> {
  const name = fc.oneof(
    fc.stringMatching(/^[a-z][a-z0-9._-]{0,10}$/).filter((n) => n !== ctx.webhookName),
    hostileText(20),
    fc.constantFrom("+15552223333", "Bot", "a".repeat(65)),
  );
  const jid = fc.oneof(jidLike, fc.constantFrom("alice@localhost", "bob@localhost", "x@elsewhere.example"));
  const path = fc.oneof(
    fc.constant("/api/v1/users"),
    rawOrEncoded(jid).map((j) => `/api/v1/users/${j}`),
    fc.constant("/api/v1/webhooks"),
    rawOrEncoded(name).map((n) => `/api/v1/webhooks/${n}`),
    rawOrEncoded(name).map((n) => `/api/v1/webhooks/${n}/token`),
    fc.oneof(fc.constantFrom("100", "1", "0", "1001", "-1", "abc", "1e3", ""), hostileText(10).map(pathSegment)).map((l) => `/api/v1/dead-letters?limit=${l}`),
    fc.oneof(fc.constantFrom("1732600000000-0", "99999999999999999999999-0", "0-0", "1-99999999999999999999", "x"), hostileText(10).map(pathSegment)).map((id) => `/api/v1/dead-letters/${id}/retry`),
    fc.constantFrom(
      "/api/v1/breaker",
      "/api/v1/limits",
      "/healthz",
      "/readyz",
      "/sandbox/messages",
      "/",
      "/api",
      "/api/v1/",
      "//api/v1/users",
      "/api/v1/users/",
      "/media/x/y",
      "/media/" + "a".repeat(43) + "/p.jpg",
    ),
    hostileText(20).map((s) => `/${pathSegment(s)}`),
  );
  const body = fc.oneof(
    fc.constant(undefined),
    fc.oneof(phoneLike, hostileText()).map((phone) => JSON.stringify({ phone })),
    fc
      .tuple(
        fc.oneof(fc.constant(ctx.webhookUrl), hostileText(), fc.constantFrom("ftp://x", "http://", ctx.webhookUrl + "/" + "a".repeat(2100))),
        fc.array(fc.oneof(jid, fc.constant("*@localhost")), { maxLength: 4 }),
        fc.option(hostileText(), { nil: undefined }),
      )
      .map(([url, allow, secret]) => JSON.stringify({ url, allow, ...(secret === undefined ? {} : { secret }) })),
    hostileJson().map((v) => JSON.stringify(v)),
    fc.constantFrom("{", "[1,", "null", '"x"', '{"phone":', "\u0000"),
  );
  return fc
    .tuple(
      fc.constantFrom("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"),
      path,
      body,
      fc.constantFrom("good", "good", "good", "bad", "none", "webhook"),
      fc.constantFrom("application/json", "application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", ""),
    )
    .map(([method, url, payload, auth, ctype]): HttpCase => {
      const headers: Record<string, string> = {};
      if (auth === "good") headers.authorization = `Bearer ${ctx.adminToken}`;
      if (auth === "bad") headers.authorization = "Bearer nope-nope-nope-nope";
      if (auth === "webhook") headers.authorization = `Bearer ${ctx.webhookToken()}`;
      if (payload !== undefined && ctype) headers["content-type"] = ctype;
      // GET/HEAD with a body is refused by inject itself; send those without one
      return { category: "admin", method, url, headers, ...(payload !== undefined && method !== "GET" && method !== "HEAD" ? { payload } : {}) };
    });
}

/** What no header value can carry: line breaks and NUL. */
// eslint-disable-next-line no-control-regex -- NUL is what is matched
const NOT_IN_A_HEADER = /[\r\n\u0000]/g;

function messageInCase(ctx: HttpFuzzContext): fc.Arbitrary<HttpCase> {
  const url = fc.oneof(fc.constantFrom("https://files.example/a.jpg", "http://x.example/b.png", "ftp://x/y", "javascript:alert(1)", "https://files.example/" + "a".repeat(2100)), hostileText());
  const body = fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .record(
          {
            to: fc.oneof({ weight: 4, arbitrary: fc.constant(ctx.userJid) }, { weight: 1, arbitrary: jidLike }),
            body: fc.oneof({ weight: 6, arbitrary: hostileText().map((t) => `${t}.`) }, { weight: 1, arbitrary: hostileText() }, { weight: 1, arbitrary: longText(9000, 11_000) }),
            text: hostileText(),
            type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom("chat", "normal", "headline") }, { weight: 1, arbitrary: fc.oneof(fc.constantFrom("groupchat", "error"), hostileText(5)) }),
            subject: fc.oneof({ weight: 4, arbitrary: hostileText() }, { weight: 1, arbitrary: longText(250, 260) }),
            media: fc.oneof(
              { weight: 3, arbitrary: fc.array(fc.constantFrom("https://files.example/a.jpg", "http://x.example/b.png?x=1&y=<2>"), { maxLength: 10 }) },
              { weight: 1, arbitrary: fc.array(url, { maxLength: 12 }) },
            ),
          },
          { requiredKeys: ["to"] },
        )
        .map((v) => JSON.stringify(v)),
    },
    { weight: 1, arbitrary: hostileJson().map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.constantFrom("{", "", "[]", "null", '{"to":1}') },
  );
  const name = fc.oneof({ weight: 4, arbitrary: fc.constant(ctx.webhookName) }, { weight: 1, arbitrary: hostileText(12).map(pathSegment) });
  return fc
    .tuple(
      name,
      body,
      fc.constantFrom("good", "good", "good", "good", "good", "good", "bad", "none", "admin", "lowercase"),
      fc.option(fc.oneof(hostileText(20), longText(200, 400)), { nil: undefined }),
      fc.constantFrom("application/json", "application/json", "application/json", "application/json", "text/plain", ""),
    )
    .map(([n, payload, auth, key, ctype]): HttpCase => {
      const headers: Record<string, string> = {};
      if (auth === "good") headers.authorization = `Bearer ${ctx.webhookToken()}`;
      if (auth === "lowercase") headers.authorization = `bearer   ${ctx.webhookToken()}  `;
      if (auth === "bad") headers.authorization = "Bearer sbt_nope";
      if (auth === "admin") headers.authorization = `Bearer ${ctx.adminToken}`;
      // header values must be latin-1 on the wire: keep what a client could send
      if (key !== undefined) headers["idempotency-key"] = Buffer.from(key, "utf8").toString("latin1").replace(NOT_IN_A_HEADER, "");
      if (ctype) headers["content-type"] = ctype;
      return { category: "message-in", method: "POST", url: `/api/v1/webhooks/${n}/messages`, headers, payload };
    });
}

/** A request body just over HTTP_BODY_LIMIT on a route that takes a body. */
function overLimitCase(ctx: HttpFuzzContext): fc.Arbitrary<HttpCase> {
  return fc
    .tuple(
      fc.constantFrom("/twilio/sms", "/twilio/status", `/api/v1/webhooks/${ctx.webhookName}/messages`, "/api/v1/users/alice@localhost", `/api/v1/webhooks/x`),
      fc.constantFrom("application/json", "application/x-www-form-urlencoded"),
      fc.integer({ min: 1, max: 4096 }),
    )
    .map(([url, ctype, extra]): HttpCase => {
      const size = ctx.bodyLimit + extra;
      const payload = ctype === "application/json" ? JSON.stringify({ body: "x".repeat(size) }) : `Body=${"x".repeat(size)}`;
      return {
        category: "body-limit",
        method: url.startsWith("/api/v1/users") || url === "/api/v1/webhooks/x" ? "PUT" : "POST",
        url,
        headers: { "content-type": ctype, authorization: `Bearer ${url.includes("/messages") ? ctx.webhookToken() : ctx.adminToken}` },
        payload,
      };
    });
}

export function httpCase(ctx: HttpFuzzContext): fc.Arbitrary<HttpCase> {
  return fc.oneof(
    { weight: 4, arbitrary: twilioSms(ctx) },
    { weight: 2, arbitrary: twilioStatus(ctx) },
    { weight: 4, arbitrary: adminCase(ctx) },
    { weight: 3, arbitrary: messageInCase(ctx) },
    { weight: 1, arbitrary: overLimitCase(ctx) },
  );
}
export const httpCases = { twilioSms, twilioStatus, adminCase, messageInCase, overLimitCase };

export interface HttpOutcome {
  status: number;
  contentType: string;
  body: string;
}

export async function send(app: FastifyInstance, c: HttpCase): Promise<HttpOutcome> {
  const res = await app.inject({ method: c.method as "GET", url: c.url, headers: c.headers, ...(c.payload === undefined ? {} : { payload: c.payload }) });
  return { status: res.statusCode, contentType: String(res.headers["content-type"] ?? ""), body: res.body };
}

/** The rule: 2xx (TwiML on the Twilio routes), or a 4xx problem+json naming its own status; never 5xx. */
export function checkOutcome(c: HttpCase, r: HttpOutcome): void {
  const what = () => `${c.method} ${c.url.slice(0, 200)} → ${r.status} ${r.contentType} ${r.body.slice(0, 300)}`;
  // 503 with Retry-After is a legitimate "later" (message-in backlog, Redis away); anything else 5xx is a bug.
  assert.ok(r.status < 500 || (r.status === 503 && r.contentType.startsWith("application/problem+json")), `server error: ${what()}`);
  if (r.status >= 400) {
    if (c.method === "HEAD") return; // no body on HEAD
    assert.ok(r.contentType.startsWith("application/problem+json"), `not a problem: ${what()}`);
    const p = JSON.parse(r.body) as { status?: number; title?: string };
    assert.equal(p.status, r.status, what());
    assert.equal(typeof p.title, "string", what());
  } else if (c.category.startsWith("twilio") && r.status === 200) {
    assert.ok(r.contentType.startsWith("text/xml"), `TwiML expected: ${what()}`);
  }
  if (c.category === "body-limit") assert.equal(r.status, 413, what());
}
