// ProviderMessageLog (core/ports.ts) in memory, for unit tests of core/flows/reconcile.ts: texts an
// account received and messages' statuses, as a test sets them; each listing and fetch is recorded, and
// failures can be injected (a listing that fails after some texts, a fetch that throws).
import { ProviderError, type LoggedInboundSms, type ProviderMessageLog } from "../../core/ports.js";

export type MemoryMessageLog = ProviderMessageLog & {
  /** A text reaching the provider on `account` (default: the main one). */
  receive(sms: Omit<LoggedInboundSms, "complete" | "account"> & { account?: string; complete?: boolean }): void;
  /** A sent message's status at the provider. */
  setStatus(providerId: string, status: string, errorCode?: number): void;
  /** The next listing fails after yielding `after` texts. */
  failListing(after: number): void;
  /** The next `n` status fetches fail. */
  failFetches(n: number): void;
  /** A user's own account whose credentials are gone: asking with it fails before any request, for good. */
  dropAccount(account: string): void;
  readonly listings: { account?: string; since: number }[];
  readonly fetches: { providerId: string; account?: string }[];
};

export function createMemoryMessageLog(mainAccount: string): MemoryMessageLog {
  const texts: LoggedInboundSms[] = [];
  const statuses = new Map<string, { status: string; errorCode?: number }>();
  const listings: { account?: string; since: number }[] = [];
  const fetches: { providerId: string; account?: string }[] = [];
  let listingFailsAfter: number | undefined;
  let fetchFailures = 0;
  const dropped = new Set<string>();
  const failure = () => new ProviderError({ kind: "retry", message: "the provider is unreachable" });
  return {
    mainAccount,
    listings,
    fetches,
    receive(sms) {
      texts.push({ ...sms, account: sms.account ?? mainAccount, complete: sms.complete ?? true });
    },
    setStatus(providerId, status, errorCode) {
      statuses.set(providerId, { status, ...(errorCode !== undefined ? { errorCode } : {}) });
    },
    failListing(after) {
      listingFailsAfter = after;
    },
    failFetches(n) {
      fetchFailures = n;
    },
    dropAccount(account) {
      dropped.add(account);
    },
    async *listInbound(q) {
      listings.push({ ...q });
      const failAfter = listingFailsAfter;
      listingFailsAfter = undefined;
      const account = q.account ?? mainAccount;
      const mine = texts.filter((t) => t.account === account && t.sentAt >= q.since).sort((a, b) => b.sentAt - a.sentAt);
      let n = 0;
      for (const t of mine) {
        if (failAfter !== undefined && n >= failAfter) throw failure();
        n++;
        yield { ...t, media: t.media.map((m) => ({ ...m })) };
      }
      if (failAfter !== undefined && n >= failAfter) throw failure();
    },
    async fetchStatus(q) {
      fetches.push({ ...q });
      if (fetchFailures > 0) {
        fetchFailures--;
        throw failure();
      }
      if (q.account !== undefined && dropped.has(q.account)) throw new ProviderError({ kind: "permanent", message: `no credentials are stored for the account ${q.account}` });
      const s = statuses.get(q.providerId);
      return s && { ...s };
    },
  };
}
