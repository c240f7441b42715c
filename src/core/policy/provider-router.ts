// One SmsProvider in front of many accounts: a message accepted for a user's own account
// (REGISTRATION=byo) goes out with that account's credentials, everything else with the gateway's.
import { ProviderError, type SmsLookupRequest, type SmsLookupResult, type SmsProvider, type SmsSendRequest, type SmsSendResult } from "../ports.js";

/** Providers of users' own accounts, by AccountSid. */
export interface AccountProviders {
  /**
   * The account's provider, the numbers registered under it and its Auth Token (its webhooks are signed
   * with it); undefined when no credentials are held.
   */
  get(accountSid: string): Promise<{ provider: SmsProvider; numbers: string[]; authToken: string } | undefined>;
}

const GONE = "the Twilio account this message was written for is no longer registered with this gateway, so it was not sent; register again to send";

export function routeByAccount<P extends SmsProvider>(main: P, accounts: AccountProviders): P {
  return Object.assign(Object.create(main) as P, {
    async send(req: SmsSendRequest): Promise<SmsSendResult> {
      if (!req.account) return main.send(req);
      const own = await accounts.get(req.account);
      // Never fall back to the gateway's own account: that would send from a number it does not own.
      if (!own) throw new ProviderError({ kind: "permanent", message: GONE });
      return own.provider.send(req);
    },
    async lookup(req: SmsLookupRequest): Promise<SmsLookupResult> {
      if (!req.account) return main.lookup(req);
      const own = await accounts.get(req.account).catch(() => undefined);
      return own ? own.provider.lookup(req) : { unknown: "the account's credentials are no longer stored" };
    },
  });
}
