// AccountStore (core/ports.ts) in memory, with the rules of adapters/redis/account-store.ts: a JID is
// under one account at a time (registering again leaves the previous one), an account may carry several
// users' numbers, and its credentials go with the last of them. Tokens are kept as given (nothing here
// is at rest); without a key (`canStore: false`) put refuses like the sealed store does.
import type { AccountStore } from "../../core/ports.js";
import { GatewayError } from "../../errors.js";
import { NO_SECRETS_KEY } from "../../secrets.js";

export type MemoryAccountStore = AccountStore & {
  /** Auth Tokens by AccountSid (for assertions, and to change one as a user would). */
  readonly tokens: Map<string, string>;
};

export function createMemoryAccountStore(opts: { canStore?: boolean } = {}): MemoryAccountStore {
  const canStore = opts.canStore ?? true;
  const tokens = new Map<string, string>();
  const userAccount = new Map<string, string>();
  /** AccountSid → (number → JID) */
  const numbers = new Map<string, Map<string, string>>();

  /** Takes `jid`'s numbers off `sid`; the account goes with its last number unless `keep`. */
  function leave(jid: string, sid: string, keep: boolean): void {
    const held = numbers.get(sid);
    for (const [n, owner] of held ?? []) if (owner === jid) held!.delete(n);
    if (held && held.size === 0) numbers.delete(sid);
    if (!keep && !numbers.has(sid)) tokens.delete(sid);
  }

  return {
    canStore,
    tokens,
    async put(jid, phone, creds) {
      if (!canStore) throw new GatewayError("unavailable", NO_SECRETS_KEY);
      const prev = userAccount.get(jid);
      if (prev !== undefined) leave(jid, prev, prev === creds.accountSid);
      userAccount.set(jid, creds.accountSid);
      tokens.set(creds.accountSid, creds.authToken);
      const held = numbers.get(creds.accountSid) ?? new Map<string, string>();
      numbers.set(creds.accountSid, held);
      held.set(phone, jid);
    },
    async accountOf(jid) {
      return userAccount.get(jid);
    },
    async credentials(sid) {
      const authToken = tokens.get(sid);
      return authToken === undefined ? undefined : { authToken, numbers: [...(numbers.get(sid)?.keys() ?? [])] };
    },
    async remove(jid) {
      const sid = userAccount.get(jid);
      if (sid === undefined) return {};
      userAccount.delete(jid);
      leave(jid, sid, false);
      return { accountSid: sid };
    },
  };
}
