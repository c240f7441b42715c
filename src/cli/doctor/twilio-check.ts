// Checks 4 and 5: the Twilio credentials work (the account is fetched through the real SDK), and each
// linked number's messaging webhook points at PUBLIC_URL/twilio/sms (POST) with no Messaging Service
// overriding it. `fix` points wrong number webhooks at PUBLIC_URL through the API and checks again.
// The transport (TWILIO_API_URL, timeouts) and the number calls are the gateway's own adapters.
import twilio from "twilio";
import type { Config } from "../../config.js";
import type { AccountCredentials, ProviderNumber } from "../../core/ports.js";
import { isGatewayError } from "../../errors.js";
import { createTwilioNumbers } from "../../adapters/twilio/numbers.js";
import { TwilioTransportError, UndiciRequestClient } from "../../adapters/twilio/request-client.js";
import { fail, ok, type Check } from "./types.js";

interface ApiErrorLike {
  status?: unknown;
  code?: unknown;
  message?: unknown;
}

function describe(e: unknown): string {
  if (e instanceof TwilioTransportError) return e.message;
  const x = (typeof e === "object" && e !== null ? e : {}) as ApiErrorLike;
  const code = typeof x.code === "number" ? `Twilio ${x.code}: ` : "";
  const status = typeof x.status === "number" ? `HTTP ${x.status}, ` : "";
  return `${status}${code}${typeof x.message === "string" ? x.message : String(e)}`;
}

const statusOf = (e: unknown): number | undefined => (typeof e === "object" && e !== null && typeof (e as ApiErrorLike).status === "number" ? ((e as ApiErrorLike).status as number) : undefined);

/** The URL each number's "A message comes in" webhook must have: what REGISTRATION=byo sets too. */
export function expectedSmsUrl(config: Config): { base: string; full: string } {
  const base = `${config.PUBLIC_URL}/twilio/sms`;
  return { base, full: config.TWILIO_URL_FRAGMENT ? `${base}#${config.TWILIO_URL_FRAGMENT}` : base };
}

export interface NumberToCheck {
  jid: string;
  phone: string;
  creds: AccountCredentials;
  /** Whose account: "the gateway's account" or "alice@example.com's own account". */
  accountLabel: string;
}

export function createTwilioDoctor(config: Config) {
  const apiBaseUrl = config.TWILIO_API_URL;
  const timeoutMs = Math.min(config.TWILIO_TIMEOUT_MS, 10_000);
  const http = new UndiciRequestClient({ ...(apiBaseUrl ? { baseUrl: apiBaseUrl } : {}), timeoutMs, maxConnections: 2 });
  const numbers = createTwilioNumbers({ ...(apiBaseUrl ? { apiBaseUrl } : {}), timeoutMs });
  const clientFor = (c: AccountCredentials) => twilio(c.accountSid, c.authToken, { httpClient: http, autoRetry: false });
  const expected = expectedSmsUrl(config);

  async function checkCredentials(): Promise<Check> {
    const sid = config.TWILIO_ACCOUNT_SID!;
    try {
      const account = await clientFor({ accountSid: sid, authToken: config.TWILIO_AUTH_TOKEN! }).api.v2010.accounts(sid).fetch();
      if (account.status !== "active") {
        return fail(
          "twilio",
          `Twilio account ${sid} ("${account.friendlyName}") is ${account.status}: it cannot send`,
          "reactivate the account in the Twilio console (Billing / account status), or use another account's TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
        );
      }
      return ok("twilio", `credentials accepted: account ${sid} ("${account.friendlyName}", ${account.type ?? "?"}) is active`);
    } catch (e) {
      const status = statusOf(e);
      if (status === 401 || status === 403) {
        return fail(
          "twilio",
          `Twilio refused TWILIO_ACCOUNT_SID ${sid} with this TWILIO_AUTH_TOKEN (${describe(e)})`,
          "TWILIO_AUTH_TOKEN is wrong (or belongs to another account, or was rotated): copy the Account SID and Auth Token from the Account Info box of the Twilio console",
        );
      }
      if (status === 404) {
        return fail("twilio", `Twilio knows no account ${sid} (${describe(e)})`, "TWILIO_ACCOUNT_SID is wrong: copy it (AC…) from the Twilio console");
      }
      if (e instanceof TwilioTransportError) {
        return fail(
          "twilio",
          `Twilio could not be reached (${e.message})`,
          `check this machine's network and proxy settings${apiBaseUrl ? `; TWILIO_API_URL=${apiBaseUrl} is set (leave it unset in production)` : ""}`,
        );
      }
      return fail("twilio", `fetching account ${sid} failed: ${describe(e)}`, "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, and Twilio's status page");
    }
  }

  /** undefined: the service defers to the number's webhook or sends to ours. Else what is wrong. */
  async function serviceProblem(creds: AccountCredentials, serviceSid: string): Promise<{ detail: string } | undefined> {
    try {
      const s = await clientFor(creds).messaging.v1.services(serviceSid).fetch();
      if (s.useInboundWebhookOnNumber) return undefined;
      if (s.inboundRequestUrl && s.inboundRequestUrl.split("#")[0] === expected.base && (s.inboundMethod ?? "POST").toUpperCase() === "POST") return undefined;
      return {
        detail: `it is in Messaging Service ${serviceSid} ("${s.friendlyName}"), whose incoming-message setting overrides the number's webhook: it sends them ${s.inboundRequestUrl ? `to ${s.inboundRequestUrl} (${s.inboundMethod ?? "POST"})` : "to no webhook (dropped, or to Studio/Autopilot)"}`,
      };
    } catch (e) {
      return { detail: `it is in Messaging Service ${serviceSid}, whose settings override the number's webhook, and the service could not be read (${describe(e)})` };
    }
  }

  const serviceFix = (serviceSid: string) =>
    `in the Twilio console, Messaging → Services → ${serviceSid} → Integration → Incoming Messages: choose "Defer to sender's webhook" (or "Send a webhook" to ${expected.full}, HTTP POST), or take the number out of the service; doctor --fix changes numbers only, never a service other numbers share`;

  /**
   * `fix`: repair a wrong webhook. `blockedFix`: --fix was asked for but PUBLIC_URL does not answer as
   * this gateway, so numbers are not pointed at it (that would lose every inbound text); says why.
   */
  async function checkNumber(n: NumberToCheck, fix: boolean, blockedFix?: string): Promise<Check> {
    const name = `number ${n.phone}`;
    const who = `${n.phone} (linked to ${n.jid})`;
    let found: ProviderNumber | undefined;
    try {
      found = await numbers.findNumber(n.creds, n.phone);
    } catch (e) {
      return fail(
        name,
        `${who}: could not be looked up on ${n.accountLabel}: ${isGatewayError(e) ? e.userText : describe(e)}`,
        "fix the Twilio credentials (see the twilio check) and run doctor again",
      );
    }
    if (!found) {
      return fail(
        name,
        `${who} is not a number of ${n.accountLabel} (${n.creds.accountSid}): texts to it never reach this gateway, and texts from it are refused`,
        `buy or port the number into that account, or link ${n.jid} to a number the account has (switchboard users link ${n.jid} +1…)`,
      );
    }
    const urlOf = (x: ProviderNumber) => `${x.smsUrl || "(none)"} (${x.smsMethod ?? "POST"})`;
    const webhookWrong = (x: ProviderNumber) => x.smsUrl.split("#")[0] !== expected.base || (x.smsMethod ?? "POST") !== "POST";
    let fixed: string | undefined;
    if (webhookWrong(found) && fix) {
      const before = urlOf(found);
      try {
        await numbers.setSmsUrl(n.creds, found.sid, expected.full);
        found = (await numbers.findNumber(n.creds, n.phone)) ?? found;
        fixed = `messaging webhook of ${n.phone} set to ${expected.full} (POST); it was ${before}`;
      } catch (e) {
        return fail(
          name,
          `${who}: incoming texts go to ${before}, and setting it failed: ${isGatewayError(e) ? e.userText : describe(e)}`,
          `in the Twilio console: Phone Numbers → Active numbers → ${n.phone} → Messaging Configuration → A message comes in: Webhook ${expected.full}, HTTP POST`,
        );
      }
    }
    const extra = fixed ? { fixed } : {};
    if (webhookWrong(found)) {
      const how = `in the console: Phone Numbers → Active numbers → ${n.phone} → Messaging Configuration → A message comes in: Webhook ${expected.full}, HTTP POST`;
      return fail(
        name,
        `incoming texts to ${who} go to ${urlOf(found)}, not to ${expected.base} (POST): they never reach this gateway`,
        blockedFix ? `${blockedFix}; then run switchboard doctor --fix, or set it ${how}` : `run switchboard doctor --fix to set it through the Twilio API, or ${how}`,
        extra,
      );
    }
    if (found.messagingServiceSid) {
      const problem = await serviceProblem(n.creds, found.messagingServiceSid);
      if (problem) return fail(name, `${who}: the number's webhook is right, but ${problem.detail}`, serviceFix(found.messagingServiceSid), extra);
      return ok(name, `${who}: incoming texts go to ${urlOf(found)} (Messaging Service ${found.messagingServiceSid} defers to it or sends there too)`, extra);
    }
    return ok(name, `${who}: incoming texts go to ${urlOf(found)}`, extra);
  }

  return {
    checkCredentials,
    checkNumber,
    async close() {
      await Promise.allSettled([http.close(), numbers.close()]);
    },
  };
}
