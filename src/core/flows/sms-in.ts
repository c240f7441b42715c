// SMS → XMPP (docs/developers/design.md "Outside → XMPP") and provider status → receipts/errors ("XMPP → outside" 6).
import { senderLocalpart, toE164 } from "../model/addresses.js";
import { createContactEvents } from "./contact-events.js";
import { GatewayError } from "../../errors.js";
import { inboundMessageId, inboundSmsKey, isMessageStatus, legacyInboundSmsKey, type MessageRecord, type MessageStatus } from "../model/message.js";
import type { Durability, IntroductionStore, LinkStore, MessageStore, OptOutStore, Delivery, ProviderStatusReport } from "../ports.js";
import { mapProviderError } from "../policy/provider-errors.js";

export interface InboundSms {
  providerId: string; // MessageSid
  /**
   * The provider account whose signature the webhook carried (the gateway's own, or a user's own with
   * REGISTRATION=byo); absent in the sandbox. It scopes the repeat check and the media credentials.
   */
  account?: string;
  from: string;
  to: string;
  body: string;
  media: { url: string; contentType?: string }[];
  /** ms since epoch when the SMS reached us; set when it is accepted later (a journal replay). */
  receivedAt?: number;
  /** Twilio's OptOutType (STOP/START/HELP), sent when a Messaging Service's Advanced Opt-Out matched. */
  optOutType?: string;
}

export type InboundOutcome =
  | { outcome: "queued" | "duplicate"; id: string; jid: string }
  | { outcome: "unrouted"; id: string }
  // Redis was away: kept in the local journal, delivered after a replay (the recipient is not known yet).
  | { outcome: "journaled"; id: string; jid?: undefined };

export interface InboundDeps {
  domain: string;
  links: LinkStore;
  messages: MessageStore;
  delivery: Delivery;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  /** The opt-out ledger (STOP/START keywords); absent in setups that keep none. */
  optOuts?: OptOutStore;
  /** Rememb************ */
  introductions?: IntroductionStore;
  /** REDIS_MIN_REPLICAS: an SMS counts as accepted (200 to the provider) only once its writes reached the replicas. */
  durability?: Durability;
}

export function createInbound(deps: InboundDeps) {
  const contacts = createContactEvents(deps);

  /**
   * Stores the SMS durably for delivery. Resolves only once it is in Redis (or known as a repeat), and
   * with REDIS_MIN_REPLICAS on its replicas: otherwise it throws, and the spool keeps it in the journal.
   */
  async function accept(sms: InboundSms): Promise<InboundOutcome> {
    const mark = deps.durability?.mark();
    const outcome = await store(sms);
    if (mark) await deps.durability?.confirm(mark);
    return outcome;
  }

  async function store(sms: InboundSms): Promise<InboundOutcome> {
    const id = inboundMessageId(sms.providerId);
    const to = toE164(sms.to) ?? sms.to;
    const jid = await deps.links.jidOf(to);
    const senderLocal = senderLocalpart(sms.from);
    const acceptedAt = sms.receivedAt ?? Date.now();
    const consent = { id, ourNumber: to, theirNumber: senderLocal, body: sms.body, acceptedAt, ...(sms.optOutType ? { optOutType: sms.optOutType } : {}) };
    if (!jid) {
      deps.log.warn({ msgId: id }, "inbound SMS for a number nobody has linked; dropped");
      await contacts.consent(consent); // the carrier blocks texts to them either way: keep the ledger true
      return { outcome: "unrouted", id };
    }
    await contacts.introduce({ id, jid, senderLocal, rawFrom: sms.from });
    // Media are re-hosted just before delivery (core/flows/media.ts), which adds the gateway's URLs (as OOB
    // and to the body); fetching here would hold up the webhook's answer.
    // Each item carries the account that signed the webhook: only that account's media get its credentials.
    const media = sms.media.map((m) => ({ url: m.url, ...(m.contentType ? { contentType: m.contentType } : {}), ...(sms.account ? { account: sms.account } : {}) }));
    const fresh = await deps.delivery.enqueueToXmpp(
      { kind: "chat", id, from: `${senderLocalpart(sms.from)}@${deps.domain}`, to: jid, body: sms.body, mediaUrls: [], ...(media.length ? { media } : {}), acceptedAt: sms.receivedAt ?? Date.now() },
      { key: inboundSmsKey(sms.account, sms.providerId), legacy: legacyInboundSmsKey(sms.providerId) },
    );
    deps.log.info({ msgId: id, duplicate: !fresh }, fresh ? "inbound SMS queued" : "repeated webhook ignored");
    // The keyword text itself is delivered like any other; the note follows it.
    if (fresh) await contacts.consent({ ...consent, jid });
    return { outcome: fresh ? "queued" : "duplicate", id, jid };
  }

  /**
   * Applies a status the gateway itself established: the create's answer, a lookup, the sandbox. States
   * move forward only; at most one receipt and one error per message, however often or out of order.
   */
  async function applyStatus(u: { id: string; providerId?: string; status: MessageStatus; errorCode?: number }): Promise<"applied" | "stale" | "unknown"> {
    const res = await deps.messages.advance(u.id, u.status, { providerId: u.providerId, errorCode: u.errorCode });
    if (!res) {
      deps.log.warn({ msgId: u.id, status: u.status }, "status for an unknown message");
      return "unknown";
    }
    return moved(u, res, "status");
  }

  /**
   * Applies a provider's status callback, signed by `signer` (the account whose secret validated it).
   * The message is the one the callback names by our id, else by its provider id. It counts only when
   * that account sent the message and `providerId` is the one its create returned; one that comes before
   * the create's answer waits for it (MessageStore.callback). Anything else is reported as unknown (and
   * answered like a known one): a stranger learns nothing about our messages.
   */
  async function applyCallback(u: ProviderStatusReport & { signer?: string }): Promise<"applied" | "stale" | "held" | "unknown"> {
    // Our id rides in the callback URL, so a callback that beats the create's answer still matches.
    // Without it the provider id must be looked up; if that fails, "unavailable" (the provider may retry).
    const id =
      u.id ??
      (await deps.messages.idForProviderId(u.providerId).catch((err: unknown) => {
        throw new GatewayError("unavailable", "The gateway cannot look up messages right now; retry later.", { cause: err });
      }));
    const status = u.status;
    if (!id || !isMessageStatus(status)) {
      deps.log.warn({ msgId: id, sid: u.providerId, status }, "status callback not matched");
      return "unknown";
    }
    const res = await deps.messages.callback(id, { status, providerId: u.providerId, ...(u.signer ? { account: u.signer } : {}), ...(u.errorCode !== undefined ? { errorCode: u.errorCode } : {}) });
    if (res.outcome === "unknown" || res.outcome === "refused") {
      deps.log.warn(
        { msgId: id, status, ...(res.outcome === "refused" ? { why: res.why } : {}) },
        res.outcome === "refused" ? "status callback refused: not from the account that sent the message, or not its provider id" : "status callback for an unknown message",
      );
      return "unknown";
    }
    if (res.outcome === "held") {
      deps.log.info({ msgId: id, status }, "status callback before the create's answer; held until it names the same message");
      return "held";
    }
    return moved({ id, status }, res, "status callback");
  }

  /** After a status was applied: the sender hears of a change (a receipt, an error). */
  async function moved(u: { id: string; status: MessageStatus }, res: { record: MessageRecord; changed: boolean }, what: string): Promise<"applied" | "stale"> {
    deps.log.info({ msgId: u.id, status: u.status, changed: res.changed }, what);
    if (!res.changed) return "stale";
    await tellSender(res.record);
    return "applied";
  }

  /** The receipt or the error a status means for the XMPP sender, once each. */
  async function tellSender(record: MessageRecord): Promise<void> {
    if (record.status === "delivered" && record.receiptRequested && record.stanzaId) {
      if (await deps.messages.markOnce(record.id, "receipt")) {
        await deps.delivery.enqueueToXmpp({ kind: "receipt", id: record.id, from: record.contactJid, to: record.jid, receiptFor: record.stanzaId });
      }
    } else if ((record.status === "failed" || record.status === "undelivered") && record.stanzaId) {
      if (await deps.messages.markOnce(record.id, "error")) {
        const to = record.contactJid.split("@")[0];
        const mapped =
          record.errorCode !== undefined
            ? mapProviderError({ code: record.errorCode }, { to })
            : { condition: "undefined-condition", type: "cancel" as const, text: `The message was ${record.status}; the provider gave no reason.` };
        await deps.delivery.enqueueToXmpp({ kind: "error", id: record.id, from: record.contactJid, to: record.jid, replyTo: record.stanzaId, ...mapped });
      }
    }
  }

  return { accept, applyStatus, applyCallback };
}

export type Inbound = ReturnType<typeof createInbound>;
