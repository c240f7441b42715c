// XMPP → SMS: decides whether a user's message becomes an SMS (docs/developers/design.md "XMPP → outside"), records
// it, queues it, and later hands it to the provider at most once (outbound-send.ts).
import { GatewayError } from "../../errors.js";
import { destinationOf, parseContactLocalpart } from "../model/addresses.js";
import { CORRECTION_PREFIX, reactionText, retractionNotice } from "../model/chat-extensions.js";
import { displayNumber } from "../model/display.js";
import type { AccessPolicy } from "../policy/access.js";
import type { SendLimits } from "../policy/limits.js";
import type { OnNetText } from "./on-net.js";
import { optedOutRefusal } from "../policy/opt-out.js";
import { countSegments, segmentsProblem } from "../model/segments.js";
import { newMessageId, newOutgoingRecord, userStanzaKey, type OutboundJob, type XmppDelivery } from "../model/message.js";
import { createSender, type SenderDeps, type SendPolicy } from "./sms-send.js";
import type { DeliveryMeta, Durability, LinkStore, MessageStore, OptOutStore, Delivery, SmsProvider, WebhookSender, WebhookStore } from "../ports.js";
import { recordAndQueue } from "./queue-outgoing.js";
import { createWebhookOut } from "./webhook-out.js";

export { backoff } from "../policy/retry-policy.js";

/** A message from an XMPP user to a contact JID, as the xmpp layer read it. */
export interface ChatFromUser {
  /** Full JID of the sender. */
  from: string;
  fromBare: string;
  /** Localpart of the contact JID it was sent to. */
  toLocal: string;
  /** Bare contact JID. */
  to: string;
  stanzaId?: string;
  type: "chat" | "normal" | "headline" | "groupchat";
  body?: string;
  /** XEP-0066 URLs (media the client uploaded). */
  oobUrls: string[];
  /** OMEMO / OpenPGP / XEP-0380 marked it as encrypted. */
  encrypted: boolean;
  receiptRequested: boolean;
  /** XEP-0308: the id of the message this one corrects. */
  replaces?: string;
  /** XEP-0444: the emojis of a reactions message (empty: reactions removed). */
  reactions?: string[];
  /** XEP-0424: the id of the message the user retracts. */
  retracts?: string;
}

export const MAX_BODY_CHARS = 1600; // Twilio's limit (docs/facts/twilio.md "Sending a message")

export type AcceptResult =
  | { outcome: "queued"; id: string }
  /** The sender sent this stanza id before and it was accepted then: nothing is sent again. */
  | { outcome: "repeat"; id: string }
  /** `notice`: a short note the user should see from the contact (why nothing was sent). */
  | { outcome: "ignored"; reason: string; notice?: string };

export interface OutboundDeps {
  links: LinkStore;
  messages: MessageStore;
  delivery: Delivery;
  provider: SmsProvider;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
  retry: SendPolicy;
  /** The status path (inbound.applyStatus), for the create's answer and a message found at the provider by a lookup. */
  applyStatus: SenderDeps["applyStatus"];
  sleep?: SenderDeps["sleep"];
  /** Webhook targets: the store, the HTTP sender and how long to keep trying an unreachable one. */
  webhooks: { store: WebhookStore; sender: WebhookSender; deadlineMs: number };
  domain: string;
  /** The opt-out ledger: sends to a number that replied STOP are refused before any provider call. */
  optOuts?: OptOutStore;
  /** Longest SMS accepted, in segments (MAX_SEGMENTS; default 10). */
  maxSegments?: number;
  /** The user's own provider account (REGISTRATION=byo), if they registered one. */
  accountOf?: (jid: string) => Promise<string | undefined>;
  /** The gateway's own provider account (TWILIO_ACCOUNT_SID): what other messages go out with; absent in the sandbox. */
  mainAccount?: string;
  /** What an unlinked user is told to do (depends on REGISTRATION). */
  notLinkedHint?: string;
  /** Delivers a text to another user of this gateway over XMPP (core/flows/on-net.ts); absent: always SMS. */
  onNet?: (t: OnNetText) => Promise<void>;
  /** ALLOWED_DOMAINS: users of other servers may not send. */
  access?: AccessPolicy;
  /** Rate, quota, destination and breaker limits (core/policy/limits.ts); absent: no limits. */
  limits?: SendLimits;
  /** REDIS_MIN_REPLICAS: a message is accepted (no stanza error) only once its writes reached the replicas. */
  durability?: Durability;
}

export function createOutbound(deps: OutboundDeps) {
  const optOuts = deps.optOuts;
  /** Throws GatewayError (rendered as a stanza error by the caller) or returns what was done. */
  async function accept(msg: ChatFromUser): Promise<AcceptResult> {
    const refused = deps.access?.userRefused(msg.fromBare);
    if (refused) throw refused;
    if (msg.type === "groupchat") {
      throw new GatewayError("not_acceptable", "Group chats are not supported by this SMS gateway yet; send a one-to-one message.");
    }
    const address = parseContactLocalpart(msg.toLocal);
    if (msg.retracts !== undefined) {
      const who = address.kind === "phone" ? displayNumber(address.e164) : msg.to;
      return { outcome: "ignored", reason: "retraction", notice: retractionNotice(who) };
    }
    let body = msg.body ?? "";
    let oobUrls = msg.oobUrls;
    if (msg.reactions !== undefined) {
      const text = reactionText(msg.reactions);
      // A bot gets no reactions; removing a reaction has nothing to tell.
      if (text === undefined || address.kind === "webhook") return { outcome: "ignored", reason: "reaction" };
      body = text;
      oobUrls = [];
    }
    if (msg.encrypted) {
      throw new GatewayError(
        "not_acceptable",
        address.kind === "webhook"
          ? `${msg.to} is a service outside XMPP and cannot read encrypted messages: turn off OMEMO/OpenPGP encryption for this contact and send again.`
          : "SMS cannot carry encrypted messages: turn off OMEMO/OpenPGP encryption for this contact and send again.",
      );
    }
    // Chat states, markers, receipts: nothing to send (XEP-0085 §5.5: never turn them into messages).
    if (!body.trim() && oobUrls.length === 0) return { outcome: "ignored", reason: "no body" };

    // Lookups that do not depend on each other are asked at once (one round trip to the store instead
    // of four); each answer is still used at its place below, in the same order of checks.
    const destinationEarly = address.kind === "webhook" ? undefined : destinationOf(address);
    const fromNumberP = destinationEarly ? quiet(deps.links.phoneOf(msg.fromBare)) : undefined;
    const peerP = destinationEarly && deps.onNet ? quiet(deps.links.jidOf(destinationEarly)) : undefined;
    const accountP = destinationEarly && deps.accountOf ? quiet(deps.accountOf(msg.fromBare)) : undefined;
    const optedOutP = destinationEarly && fromNumberP && optOuts ? quiet(fromNumberP.then((n) => (n ? optOuts.isOptedOut(n, destinationEarly) : false))) : undefined;

    // From here on the message is stored: what is stored is confirmed on the replicas before it counts
    // as accepted (a repeat too: the first one may have been refused before its write was confirmed).
    const mark = deps.durability?.mark();
    const accepted = async (res: AcceptResult): Promise<AcceptResult> => {
      if (mark) await deps.durability?.confirm(mark);
      return res;
    };

    // A resent stanza (same sender, same id) that was accepted before is answered by the first one.
    const repeatKey = msg.stanzaId ? userStanzaKey(msg.fromBare, msg.stanzaId) : undefined;
    const first = repeatKey && (await deps.delivery.idForDedupeKey(repeatKey));
    if (first) {
      deps.log.info({ msgId: first }, "repeat of a message already accepted: not sent again");
      return accepted({ outcome: "repeat", id: first });
    }
    await deps.limits?.admitMessage(msg.fromBare);

    if (address.kind === "webhook") {
      const { text, mediaUrls } = splitMedia(body, oobUrls);
      const id = await webhookOut.accept({
        from: msg.from,
        fromBare: msg.fromBare,
        name: address.name,
        stanzaId: msg.stanzaId,
        body: text,
        mediaUrls,
        receiptRequested: msg.receiptRequested,
        ...(repeatKey ? { repeatKey } : {}),
      });
      return accepted({ outcome: "queued", id });
    }
    const destination = destinationOf(address);
    if (!destination) {
      throw new GatewayError("not_allowed", `'${address.kind === "alphanumeric" ? address.name : msg.toLocal}' is a named sender that cannot receive texts.`);
    }
    const fromNumber = await fromNumberP;
    if (!fromNumber) {
      throw new GatewayError("registration_required", `Your account is not linked to a phone number on this gateway; ${deps.notLinkedHint ?? "ask its operator to link one."}`);
    }
    if (await optedOutP) {
      // Twilio would refuse it (21610) anyway; refusing here says why without a provider round trip.
      throw new GatewayError("forbidden", optedOutRefusal(destination, fromNumber));
    }
    const split = splitMedia(body, oobUrls);
    const mediaUrls = split.mediaUrls;
    // XEP-0308: a correction goes out as a new text, marked (SMS cannot edit).
    const text = msg.replaces !== undefined && split.text ? CORRECTION_PREFIX + split.text : split.text;

    const peer = deps.onNet && (await peerP);
    if (peer && deps.onNet) {
      // Both numbers are ours: deliver over XMPP instead of paying for an SMS round trip.
      const id = newMessageId();
      await deps.onNet({ id, from: fromNumber, to: destination, jid: peer, body: text, mediaUrls });
      // The receipt comes once the text is queued durably toward its recipient (there is no carrier).
      if (msg.receiptRequested && msg.stanzaId) await deps.delivery.enqueueToXmpp({ kind: "receipt", id, from: msg.to, to: msg.from, receiptFor: msg.stanzaId });
      deps.log.info({ msgId: id }, "on-net text delivered over XMPP, no SMS");
      return accepted({ outcome: "queued", id });
    }

    deps.limits?.checkDestination(destination);
    if (text.length > MAX_BODY_CHARS) {
      throw new GatewayError("not_acceptable", `The message is ${text.length} characters long; SMS allows at most ${MAX_BODY_CHARS}.`);
    }
    // An MMS body is not split into segments; only plain texts are counted.
    // Counted once (the calculator is costly on long texts): the limit and the quota use the same figure.
    const segments = mediaUrls.length === 0 ? countSegments(text) : undefined;
    const tooLong = segments ? segmentsProblem(segments, deps.maxSegments ?? 10) : undefined;
    if (tooLong) throw new GatewayError("not_acceptable", tooLong);
    // What it costs: an MMS is billed as one message; a text by its segments.
    await deps.limits?.admitSms(msg.fromBare, Math.max(1, segments?.segments ?? 1));

    const id = newMessageId();
    const now = Date.now();
    // A user's own account (REGISTRATION=byo) travels with the job: it goes out with that account. The
    // record keeps the account it goes out with, whose status callbacks alone may change it.
    const account = await accountP;
    const sentWith = account ?? deps.mainAccount;
    const record = newOutgoingRecord({
      id,
      channel: "sms",
      jid: msg.from,
      stanzaId: msg.stanzaId,
      contactJid: msg.to,
      receiptRequested: msg.receiptRequested,
      ...(sentWith ? { account: sentWith } : {}),
      now,
    });
    // The key is stored with the job in one step: a crash before it leaves nothing that blocks a resend.
    if (!(await recordAndQueue(deps, record, { id, from: fromNumber, to: destination, body: text, mediaUrls, ...(account ? { account } : {}) }, repeatKey))) {
      deps.log.info({ msgId: id }, "repeat of a message already queued (sent twice at once): not queued again");
      return accepted({ outcome: "repeat", id });
    }
    deps.log.info({ msgId: id }, "outbound message queued");
    return accepted({ outcome: "queued", id });
  }

  /** Queues one error reply to the original stanza (never two for one message). */
  async function reportError(id: string, type: Extract<XmppDelivery, { kind: "error" }>["type"], condition: string, text: string): Promise<void> {
    const record = await deps.messages.get(id);
    if (!record?.stanzaId) return; // nothing to answer to (the client sent no id)
    if (!(await deps.messages.markOnce(id, "error"))) return;
    await deps.delivery.enqueueToXmpp({ kind: "error", id, from: record.contactJid, to: record.jid, replyTo: record.stanzaId, condition, type, text });
  }

  const webhookOut = createWebhookOut({
    domain: deps.domain,
    webhooks: deps.webhooks.store,
    sender: deps.webhooks.sender,
    messages: deps.messages,
    delivery: deps.delivery,
    log: deps.log,
    retry: { baseMs: deps.retry.baseMs, deadlineMs: deps.webhooks.deadlineMs },
    reportError,
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
  });

  /** Hands a queued message to the provider. Resolves when the job is finished (sent or reported). */
  const sms = createSender({
    messages: deps.messages,
    provider: deps.provider,
    log: deps.log,
    retry: deps.retry,
    applyStatus: deps.applyStatus,
    reportError,
    ...(optOuts ? { onOptedOut: (from: string, to: string) => optOuts.optOut(from, to, "provider-21610") } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
  });

  /** Hands a queued job to its next hop: the SMS provider or the webhook target. */
  function process(job: OutboundJob, meta?: Pick<DeliveryMeta, "signal">): Promise<void> {
    return job.channel === "webhook" ? webhookOut.process(job, meta) : sms.process(job, meta);
  }

  // One conversation's messages are taken in one after the other, in the order they came. Taken in at
  // once, their writes could reach Redis in another order: a command caught by a Sentinel failover is
  // run again on the new primary, after commands sent later (docs/facts/redis.md).
  const inConversation = new Map<string, Promise<unknown>>();
  function acceptInOrder(msg: ChatFromUser): Promise<AcceptResult> {
    const key = `${msg.fromBare} ${msg.to}`;
    const run = (inConversation.get(key) ?? Promise.resolve()).then(() => accept(msg));
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    inConversation.set(key, settled);
    void settled.then(() => {
      if (inConversation.get(key) === settled) inConversation.delete(key);
    });
    return run;
  }

  return { accept: acceptInOrder, process, reportError };
}

export type Outbound = ReturnType<typeof createOutbound>;

/** `p`, with a rejection left unobserved (a path that returns early never awaits it) kept from crashing the process. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/**
 * A client that uploads a file (XEP-0363) sends its URL as the body and as XEP-0066 OOB; that URL is
 * media, not text. Other text stays the caption.
 */
export function splitMedia(body: string, oobUrls: string[]): { text: string; mediaUrls: string[] } {
  const media = oobUrls.filter((u) => /^https?:\/\//i.test(u));
  let text = body;
  for (const u of media) {
    if (text.trim() === u) text = "";
    else
      text = text
        .split("\n")
        .filter((line) => line.trim() !== u)
        .join("\n");
  }
  return { text: text.trim() ? text : "", mediaUrls: media.slice(0, 10) };
}
