// LinkStore (core/ports.ts) in memory, with the rules of adapters/redis/link-store.ts: one number per
// JID and one JID per number, a new number replaces the JID's previous one, a number another JID holds
// is a `conflict`. For unit tests of the flows; test/support/contracts/link-store.ts keeps both alike.
import type { LinkStore } from "../../core/ports.js";
import { GatewayError } from "../../errors.js";

export type MemoryLinkStore = LinkStore & {
  /** Every link, by bare JID (for assertions). */
  readonly links: ReadonlyMap<string, string>;
};

export function createMemoryLinkStore(initial: Record<string, string> = {}): MemoryLinkStore {
  const byJid = new Map<string, string>();
  const byPhone = new Map<string, string>();
  const store: MemoryLinkStore = {
    links: byJid,
    async link(jid, phone) {
      const holder = byPhone.get(phone);
      if (holder !== undefined && holder !== jid) throw new GatewayError("conflict", `The number ${phone} is already linked to another account.`, { field: "phone" });
      const previous = byJid.get(jid);
      if (previous !== undefined && previous !== phone) byPhone.delete(previous);
      byJid.set(jid, phone);
      byPhone.set(phone, jid);
      if (previous === undefined) return { created: true };
      return { created: false, ...(previous !== phone ? { previous } : {}) };
    },
    async unlink(jid) {
      const phone = byJid.get(jid);
      if (phone === undefined) return false;
      byJid.delete(jid);
      byPhone.delete(phone);
      return true;
    },
    async phoneOf(jid) {
      return byJid.get(jid);
    },
    async jidOf(phone) {
      return byPhone.get(phone);
    },
    async list() {
      return [...byJid].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([jid, phone]) => ({ jid, phone }));
    },
  };
  for (const [jid, phone] of Object.entries(initial)) {
    byJid.set(jid, phone);
    byPhone.set(phone, jid);
  }
  return store;
}
