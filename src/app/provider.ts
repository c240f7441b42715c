// The SMS provider the configuration names, with everything provider-specific about it: sending and
// looking up, its webhooks, whose credentials its media need, and (REGISTRATION=byo) users' own accounts.
// A second provider is a second branch here and an adapter of its own.
import type { Config } from "../config.js";
import type { Inbound } from "../core/flows/sms-in.js";
import type { MediaAccessPolicy } from "../core/flows/media.js";
import type { AccountStore, ProviderAccounts, ProviderMessageLog, ProviderWebhooks, SmsProvider } from "../core/ports.js";
import { routeByAccount } from "../core/policy/provider-router.js";
import { createSandboxProvider, type SandboxProvider } from "../adapters/sandbox/provider.js";
import { createSandboxWebhooks } from "../adapters/sandbox/webhooks.js";
import { createAccountProviders } from "../adapters/twilio/account-providers.js";
import { createTwilioMediaAccess } from "../adapters/twilio/media-access.js";
import { createTwilioMessageLog } from "../adapters/twilio/message-log.js";
import { createTwilioNumbers } from "../adapters/twilio/numbers.js";
import { createTwilioProvider } from "../adapters/twilio/provider.js";
import { createTwilioWebhooks } from "../adapters/twilio/webhooks.js";
import type { Logger } from "../logger.js";

export interface ProviderKit {
  provider: SmsProvider;
  webhooks: ProviderWebhooks;
  media: MediaAccessPolicy;
  /** The provider's own record of messages, read back by reconciliation (core/flows/reconcile.ts). */
  messageLog: ProviderMessageLog;
  /** The sandbox's window (its routes and web phone), when it is the provider. */
  sandbox?: SandboxProvider;
  /** Users' own accounts (REGISTRATION=byo): the provider's account API, and the URL their numbers must post to. */
  registration?: { providerAccounts: ProviderAccounts; smsUrl: string };
  close(): Promise<void>;
}

export function createProviderKit(config: Config, deps: { accounts: AccountStore; inbound: Pick<Inbound, "applyStatus">; log: Logger }): ProviderKit {
  if (config.SMS_PROVIDER === "sandbox") {
    const sandbox = createSandboxProvider({
      // The sandbox reports status the way Twilio's callbacks would, through the same path.
      onStatus: (id, providerId, status) => deps.inbound.applyStatus({ id, providerId, status }).then(() => undefined),
      onError: (err) => deps.log.warn({ err }, "sandbox status failed"),
    });
    return {
      provider: sandbox,
      webhooks: createSandboxWebhooks(),
      media: { access: async () => ({ provider: false }), isProviderOrigin: () => false },
      messageLog: sandbox,
      sandbox,
      close: () => sandbox.close(),
    };
  }

  const accountSid = config.TWILIO_ACCOUNT_SID!;
  const authToken = config.TWILIO_AUTH_TOKEN!;
  const api = { ...(config.TWILIO_API_URL ? { apiBaseUrl: config.TWILIO_API_URL } : {}), timeoutMs: config.TWILIO_TIMEOUT_MS };
  const main = createTwilioProvider({ accountSid, authToken, publicUrl: config.PUBLIC_URL, maxConnections: config.TWILIO_MAX_CONNECTIONS, ...api });
  // REGISTRATION=byo: users bring their own Twilio account; its token is sealed under SECRETS_KEY, and
  // their messages go out (and their webhooks are checked) with it.
  const byo = config.REGISTRATION === "byo";
  const own = byo
    ? createAccountProviders({
        store: deps.accounts,
        make: (sid, token) => createTwilioProvider({ accountSid: sid, authToken: token, publicUrl: config.PUBLIC_URL, maxConnections: 4, ...api }),
        onStoreError: (err) => deps.log.warn({ err: (err as Error).message }, "account store unreachable; using the last known credentials"),
      })
    : undefined;
  const numbers = byo ? createTwilioNumbers(api) : undefined;
  const webhooks = createTwilioWebhooks({
    mainAccountSid: accountSid,
    mainAuthToken: authToken,
    ...(config.TWILIO_URL_FRAGMENT ? { urlFragment: config.TWILIO_URL_FRAGMENT } : {}),
    ...(own ? { accounts: own } : {}),
  });
  // The gateway's own account, or one a user brought (REGISTRATION=byo) — stored credentials are
  // honoured even when REGISTRATION is no longer byo, for the media of texts already queued.
  const authTokenOf = async (sid: string) => (sid === accountSid ? authToken : (await deps.accounts.credentials(sid))?.authToken);
  const media = createTwilioMediaAccess({ apiOrigin: config.TWILIO_API_URL ?? "https://api.twilio.com", authTokenOf });
  const messageLog = createTwilioMessageLog({ accountSid, authToken, ...api, authTokenOf });
  return {
    provider: own ? routeByAccount(main, own) : main,
    webhooks,
    media,
    messageLog,
    ...(numbers ? { registration: { providerAccounts: numbers, smsUrl: `${config.PUBLIC_URL}${webhooks.paths.inbound}${config.TWILIO_URL_FRAGMENT ? `#${config.TWILIO_URL_FRAGMENT}` : ""}` } } : {}),
    async close() {
      await main.close();
      await own?.close();
      await numbers?.close();
      await messageLog.close();
    },
  };
}
