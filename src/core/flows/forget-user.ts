// Forgetting a user (issue 6 item 3, "Data lifecycle"): what unlinking or unregistering deletes. Every
// path that ends a user's link goes through here — the admin API's DELETE /api/v1/users/{jid}, and
// XEP-0077 <remove/>, the ad-hoc and the chat `unregister` (core/flows/registration.ts) — so they all delete
// the same things:
//
//  1. the link (user ⇄ number), first, so that nothing new is routed to or sent for them;
//  2. queued work (before the credentials, and swept again after them): deliveries addressed to them
//     ("recipient unlinked") and their messages still waiting for the provider or a webhook target
//     ("sender unlinked") become dead letters with that reason —
//     kept for DEAD_LETTER_RETENTION, where the operator can see them (and retry them once the user
//     is linked again: retryRefusal), never silently lost;
//  3. their stored provider credentials (REGISTRATION=byo; the account's token goes with the last
//     number registered under it);
//  4. the contacts they were introduced to;
//  5. the media re-hosted for them (files and index).
//
// Not deleted: message records and idempotency keys (no bodies, they expire on their own within
// MESSAGE_RETENTION / DEDUPE_TTL), and the opt-out ledger of the number (a contact's STOP belongs to the
// number, and the carrier keeps blocking texts to them whoever holds it next).
import type { MediaIndex, MediaRemover } from "./media.js";
import type { OutboundJob, XmppDelivery } from "../model/message.js";
import type { AccountStore, DeadLetter, IntroductionStore, LinkStore, MessageStore, Delivery } from "../ports.js";

export const RECIPIENT_UNLINKED = "recipient unlinked";
export const SENDER_UNLINKED = "sender unlinked";

export interface ForgetUserDeps {
  links: Pick<LinkStore, "phoneOf" | "unlink">;
  /** Stored provider credentials (REGISTRATION=byo, or left from a time the gateway ran so). */
  accounts?: Pick<AccountStore, "remove">;
  delivery?: Pick<Delivery, "deadLetterWhere">;
  introductions?: Pick<IntroductionStore, "forget">;
  media?: { index: MediaIndex; files: MediaRemover };
  log: { info(o: object, m: string): void };
}

export interface ForgetResult {
  /** True when there was anything to remove (a link or stored credentials). */
  removed: boolean;
  /** The number they were linked to. */
  phone?: string;
  hadCredentials: boolean;
  /** Queued items moved to the dead letters. */
  deadLettered: number;
  /** Re-hosted media items deleted. */
  media: number;
}

const bareOf = (jid: string): string => jid.split("/")[0]!;

/**
 * Which queued items belong to the forgotten user, and why they are given up: deliveries toward
 * XMPP addressed to them, and jobs toward the provider (from their number) or a webhook target
 * (from their JID).
 */
export function unlinkedWork(jid: string, phone: string | undefined): (queue: DeadLetter["queue"], item: XmppDelivery | OutboundJob) => string | undefined {
  return (queue, item) => {
    if (queue === "to-xmpp") return bareOf(item.to) === jid ? RECIPIENT_UNLINKED : undefined;
    const job = item as OutboundJob;
    if (job.channel === "webhook") return bareOf(job.from) === jid ? SENDER_UNLINKED : undefined;
    return phone !== undefined && job.from === phone ? SENDER_UNLINKED : undefined;
  };
}

/**
 * Why a dead letter set aside when its user was forgotten may not go out now, or undefined when it may.
 * Retrying one is for a user linked again: otherwise it would reach someone who left (a delivery), or
 * leave from a number that is no longer theirs and may be someone else's by now (a text).
 */
export async function retryRefusal(dl: DeadLetter, deps: { links: Pick<LinkStore, "phoneOf" | "jidOf">; messages: Pick<MessageStore, "get"> }): Promise<string | undefined> {
  if (dl.reason !== RECIPIENT_UNLINKED && dl.reason !== SENDER_UNLINKED) return undefined;
  if (dl.queue === "to-xmpp") {
    const user = bareOf(dl.item.to);
    return (await deps.links.phoneOf(user)) ? undefined : `${user} was unlinked; link them again before retrying what was waiting for them.`;
  }
  const job = dl.item as OutboundJob;
  if (job.channel === "webhook") {
    return (await deps.links.phoneOf(bareOf(job.from))) ? undefined : `${bareOf(job.from)} was unlinked; link them again before retrying what they sent.`;
  }
  // A text goes out from job.from: only for the user who sent it, linked to that number again.
  const sender = (await deps.messages.get(job.id))?.jid;
  const holder = await deps.links.jidOf(job.from);
  if (sender && holder === bareOf(sender)) return undefined;
  return `The number ${job.from} is no longer linked to ${sender ? bareOf(sender) : "the user who sent this text"}; link them to it again before retrying.`;
}

export function createForgetUser(deps: ForgetUserDeps) {
  return async function forgetUser(jid: string): Promise<ForgetResult> {
    const phone = await deps.links.phoneOf(jid);
    const unlinked = await deps.links.unlink(jid);
    // Queued work goes before the credentials: a job still retrying would otherwise find its account
    // gone and queue an error reply to the user being forgotten. A second sweep takes what a job that
    // was finishing meanwhile queued.
    const select = unlinkedWork(jid, phone);
    let deadLettered = (await deps.delivery?.deadLetterWhere(select)) ?? 0;
    const { accountSid } = (await deps.accounts?.remove(jid)) ?? {};
    deadLettered += (await deps.delivery?.deadLetterWhere(select)) ?? 0;
    await deps.introductions?.forget(jid);
    let media = 0;
    if (deps.media) {
      for (const token of await deps.media.index.takeOwned(jid)) {
        if (await deps.media.files.remove(token)) media++;
      }
    }
    const removed = unlinked || Boolean(accountSid);
    if (removed || deadLettered > 0 || media > 0) {
      deps.log.info({ jid, credentials: Boolean(accountSid), deadLettered, media }, "user forgotten: link, credentials, queued work and media deleted");
    }
    return { removed, hadCredentials: Boolean(accountSid), deadLettered, media, ...(phone ? { phone } : {}) };
  };
}

export type ForgetUser = ReturnType<typeof createForgetUser>;
