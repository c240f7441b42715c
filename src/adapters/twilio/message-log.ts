// Twilio's message log, read back for reconciliation (core/flows/reconcile.ts): the Messages list resource
// with a DateSent filter, a page at a time, and one message's fetch (docs/facts/twilio.md "Reading the
// message log"). For the gateway's own account and for users' own accounts (REGISTRATION=byo), each
// with its own credentials; one undici transport carries them all.
import twilio from "twilio";
import type { MessageInstance, MessagePage } from "twilio/lib/rest/api/v2010/account/message.js";
import { ProviderError, type LoggedInboundSms, type ProviderMessageLog, type ProviderStatus } from "../../core/ports.js";
import { twilioFailure } from "./provider.js";
import { UndiciRequestClient } from "./request-client.js";

/** Twilio's largest page: the fewest requests per run. */
export const LIST_PAGE_SIZE = 1000;
/** Twilio's own limit of media per message. */
const MAX_MEDIA = 10;

export interface TwilioMessageLogOptions {
  /** The gateway's own account. */
  accountSid: string;
  authToken: string;
  /** TWILIO_API_URL: replaces https://api.twilio.com (fake Twilio). */
  apiBaseUrl?: string;
  timeoutMs?: number;
  /** A user's own account's Auth Token (REGISTRATION=byo); undefined when none is stored. */
  authTokenOf?(accountSid: string): Promise<string | undefined>;
  pageSize?: number;
}

type Client = ReturnType<typeof twilio>;

/** The SDK leaves a date it cannot parse as the original string; null when Twilio has none. */
function timeOf(d: unknown): number | undefined {
  if (d instanceof Date) return Number.isNaN(d.getTime()) ? undefined : d.getTime();
  if (typeof d !== "string" || d === "") return undefined;
  const t = Date.parse(d);
  return Number.isNaN(t) ? undefined : t;
}

/** Runs an SDK call; what it throws becomes a classified ProviderError. */
async function call<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw new ProviderError(twilioFailure(e));
  }
}

export function createTwilioMessageLog(opts: TwilioMessageLogOptions): ProviderMessageLog & { close(): Promise<void> } {
  const http = new UndiciRequestClient({
    ...(opts.apiBaseUrl ? { baseUrl: opts.apiBaseUrl } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    maxConnections: 4,
  });
  // Media URLs as Twilio's webhooks name them, so they get the same credentials (adapters/twilio/media-access.ts).
  const origin = new URL(opts.apiBaseUrl ?? "https://api.twilio.com").origin;
  const pageSize = opts.pageSize ?? LIST_PAGE_SIZE;
  const mainClient = twilio(opts.accountSid, opts.authToken, { httpClient: http, autoRetry: false });

  async function clientOf(account: string | undefined): Promise<{ sid: string; client: Client }> {
    if (account === undefined || account === opts.accountSid) return { sid: opts.accountSid, client: mainClient };
    const token = await opts.authTokenOf?.(account);
    if (!token) throw new ProviderError({ kind: "permanent", message: `no credentials are stored for the Twilio account ${account}` });
    return { sid: account, client: twilio(account, token, { httpClient: http, autoRetry: false }) };
  }

  /** The message's media, as MediaUrl{N} of its webhook would name them. */
  async function mediaOf(client: Client, sid: string, messageSid: string): Promise<{ url: string; contentType?: string }[]> {
    const items = await call(() => client.messages(messageSid).media.list({ limit: MAX_MEDIA }));
    return items.map((m) => ({ url: `${origin}/2010-04-01/Accounts/${sid}/Messages/${messageSid}/Media/${m.sid}`, ...(m.contentType ? { contentType: m.contentType } : {}) }));
  }

  async function logged(client: Client, sid: string, m: MessageInstance, sentAt: number): Promise<LoggedInboundSms> {
    const count = Math.min(MAX_MEDIA, Number(m.numMedia) || 0);
    const media = count > 0 ? await mediaOf(client, sid, m.sid) : [];
    return {
      providerId: m.sid,
      account: sid,
      from: m.from ?? "",
      to: m.to ?? "",
      body: m.body ?? "",
      media,
      sentAt,
      // "receiving": an MMS whose media Twilio is still taking in; its webhook has not gone out yet either.
      complete: m.status !== "receiving" && media.length >= count,
    };
  }

  return {
    mainAccount: opts.accountSid,

    async *listInbound({ account, since }) {
      const { sid, client } = await clientOf(account);
      // DateSent> is documented as a date (inclusive, UTC): the time part may be ignored, so each message's
      // own time is checked again here. Pages come newest first.
      let page: MessagePage = await call(() => client.messages.page({ dateSentAfter: new Date(since), pageSize }));
      for (;;) {
        let inWindow = 0;
        for (const m of page.instances) {
          // A message still queued has no date_sent yet; inbound ones always have one.
          const at = timeOf(m.dateSent) ?? timeOf(m.dateCreated);
          if (at === undefined || at < since) continue;
          inWindow++;
          if (m.direction === "inbound") yield await logged(client, sid, m, at);
        }
        // A page wholly before the window: every later page is older still.
        const next = page.nextPageUrl;
        if (!next || inWindow === 0) return;
        page = await call(() => client.messages.getPage(next));
      }
    },

    async fetchStatus({ providerId, account }): Promise<ProviderStatus | undefined> {
      const { client } = await clientOf(account);
      try {
        const m = await client.messages(providerId).fetch();
        return { status: String(m.status).toLowerCase(), ...(typeof m.errorCode === "number" && m.errorCode > 0 ? { errorCode: m.errorCode } : {}) };
      } catch (e) {
        // 404 (20404): Twilio has no such message any more (deleted, or redacted away).
        if (typeof e === "object" && e !== null && (e as { status?: unknown }).status === 404) return undefined;
        throw new ProviderError(twilioFailure(e));
      }
    },

    close: () => http.close(),
  };
}
