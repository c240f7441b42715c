// A Twilio provider per user-owned account (REGISTRATION=byo), built on first use and kept while its
// token is unchanged (each provider holds a keep-alive connection pool). The credentials are read from
// the store every time, so an unregistered account stops working at once; while Redis is unreachable
// the last known credentials still serve, so inbound webhooks for such accounts are not refused.
import type { AccountProviders } from "../../core/policy/provider-router.js";
import type { AccountStore, SmsProvider } from "../../core/ports.js";
import { hashToken } from "../../secrets.js";

type Closable = SmsProvider & { close(): Promise<void> };

interface Entry {
  tokenHash: string;
  authToken: string;
  provider: Closable;
  numbers: string[];
}

export function createAccountProviders(opts: {
  store: Pick<AccountStore, "credentials">;
  make(accountSid: string, authToken: string): Closable;
  /** Accounts kept at once (least recently used dropped first); default 200. */
  max?: number;
  onStoreError?(err: unknown): void;
}): AccountProviders & { close(): Promise<void> } {
  const max = opts.max ?? 200;
  const cache = new Map<string, Entry>();

  const drop = (sid: string): void => {
    const e = cache.get(sid);
    cache.delete(sid);
    void e?.provider.close().catch(() => undefined);
  };

  return {
    async get(accountSid) {
      let creds: Awaited<ReturnType<AccountStore["credentials"]>>;
      try {
        creds = await opts.store.credentials(accountSid);
      } catch (err) {
        const stale = cache.get(accountSid);
        if (!stale) throw err;
        opts.onStoreError?.(err);
        return { provider: stale.provider, numbers: stale.numbers, authToken: stale.authToken };
      }
      if (!creds) {
        drop(accountSid);
        return undefined;
      }
      const tokenHash = hashToken(creds.authToken);
      let entry = cache.get(accountSid);
      if (!entry || entry.tokenHash !== tokenHash) {
        if (entry) drop(accountSid);
        entry = { tokenHash, authToken: creds.authToken, provider: opts.make(accountSid, creds.authToken), numbers: creds.numbers };
      } else {
        entry.numbers = creds.numbers;
        cache.delete(accountSid); // re-inserted below: Map order is the LRU order
      }
      cache.set(accountSid, entry);
      for (const sid of cache.keys()) {
        if (cache.size <= max) break;
        drop(sid);
      }
      return { provider: entry.provider, numbers: entry.numbers, authToken: entry.authToken };
    },
    async close() {
      const all = [...cache.values()];
      cache.clear();
      await Promise.allSettled(all.map((e) => e.provider.close()));
    },
  };
}
