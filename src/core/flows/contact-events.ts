// What a user hears about a contact besides its texts: a subscription request with a nickname the
// first time a number writes (so clients offer to add it), and a note when it opts out or back in.
// Both travel the to-xmpp queue in the contact's conversation partition, so they keep their order
// with that contact's messages.
import { displayNumber } from "../model/display.js";
import { consentChange, consentNote } from "../policy/opt-out.js";
import type { IntroductionStore, OptOutStore, Delivery } from "../ports.js";

export interface ContactEventsDeps {
  domain: string;
  delivery: Pick<Delivery, "enqueueToXmpp">;
  /** Absent: no ledger (nothing recorded, nothing told). */
  optOuts?: OptOutStore;
  /** Absent: no introductions. */
  introductions?: IntroductionStore;
  log: { info(o: object, m: string): void };
}

/** The nickname a contact introduces itself with: the number as people write it, or the sender's name. */
export function contactNick(senderLocal: string, rawFrom: string): string {
  if (senderLocal.startsWith("+")) return displayNumber(senderLocal);
  return senderLocal.startsWith("~") ? rawFrom.trim() || senderLocal.slice(1) : senderLocal;
}

export function createContactEvents(deps: ContactEventsDeps) {
  /**
   * Queues a subscription request from `senderLocal`@domain to `jid`, once per pair ever. At most once:
   * the pair is marked first, so a crash right after loses an introduction rather than nagging twice.
   */
  async function introduce(p: { id: string; jid: string; senderLocal: string; rawFrom: string }): Promise<void> {
    if (!deps.introductions) return;
    const bare = p.jid.split("/")[0]!;
    if (!(await deps.introductions.introduce(bare, p.senderLocal))) return;
    await deps.delivery.enqueueToXmpp({ kind: "subscribe", id: `sub-${p.id}`, from: `${p.senderLocal}@${deps.domain}`, to: bare, nick: contactNick(p.senderLocal, p.rawFrom) });
    deps.log.info({ msgId: p.id }, "new contact introduced with a subscription request");
  }

  /**
   * Applies what an inbound text says about consent to the ledger of (ourNumber, theirNumber) and,
   * when that changed something and the user is known, queues a note from the contact's JID.
   */
  async function consent(p: { id: string; ourNumber: string; theirNumber: string; body: string; optOutType?: string; jid?: string; acceptedAt: number }): Promise<void> {
    // Alphanumeric senders cannot be texted, so there is nothing to consent to.
    if (!deps.optOuts || p.theirNumber.startsWith("~")) return;
    const change = consentChange(p.body, p.optOutType);
    if (!change) return;
    const byType = /^\s*(STOP|START)\s*$/i.test(p.optOutType ?? "");
    const changed = change === "opt-out" ? await deps.optOuts.optOut(p.ourNumber, p.theirNumber, byType ? "optout-type" : "keyword") : await deps.optOuts.optIn(p.ourNumber, p.theirNumber);
    deps.log.info({ msgId: p.id, change, changed }, "consent keyword received");
    if (!changed || !p.jid) return;
    await deps.delivery.enqueueToXmpp({
      kind: "chat",
      id: `${p.id}-${change}`,
      from: `${p.theirNumber}@${deps.domain}`,
      to: p.jid,
      body: consentNote(change, p.theirNumber, p.ourNumber),
      mediaUrls: [],
      acceptedAt: p.acceptedAt,
    });
  }

  return { introduce, consent };
}

export type ContactEvents = ReturnType<typeof createContactEvents>;
