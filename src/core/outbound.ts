// XMPP → SMS: decides whether a user's message becomes an SMS (GATEWAY.md "XMPP → outside"), records
// it, queues it, and later hands it to the provider exactly once.
import { GatewayError } from "../errors.js";
import { destinationOf, parseContactLocalpart } from "./addresses.js";
import { newMessageId, type OutboundJob, type XmppDelivery } from "./message.js";
import type { LinkStore, MessageStore, Pipeline, SmsProvider } from "./ports.js";
import { ProviderError } from "./ports.js";
import { mapProviderFailure } from "./provider-errors.js";

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
}

export const MAX_BODY_CHARS = 1600; // Twilio's limit (FACTS A3)

export type AcceptResult = { outcome: "queued"; id: string } | { outcome: "ignored"; reason: string };

export interface OutboundDeps {
  links: LinkStore;
  messages: MessageStore;
  pipeline: Pipeline;
  provider: SmsProvider;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
  retry: { maxAttempts: number; baseMs: number };
  sleep?: (ms: number) => Promise<void>;
}

export function createOutbound(deps: OutboundDeps) {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  /** Throws GatewayError (rendered as a stanza error by the caller) or returns what was done. */
  async function accept(msg: ChatFromUser): Promise<AcceptResult> {
    const body = msg.body ?? "";
    if (msg.type === "groupchat") {
      throw new GatewayError("not_acceptable", "Group chats are not supported by this SMS gateway yet; send a one-to-one message.");
    }
    if (msg.encrypted) {
      throw new GatewayError("not_acceptable", "SMS cannot carry encrypted messages: turn off OMEMO/OpenPGP encryption for this contact and send again.");
    }
    // Chat states, markers, receipts: nothing to text (XEP-0085 §5.5: never turn them into messages).
    if (!body.trim() && msg.oobUrls.length === 0) return { outcome: "ignored", reason: "no body" };

    const address = parseContactLocalpart(msg.toLocal);
    if (address.kind === "webhook") {
      throw new GatewayError("not_found", `There is no contact '${msg.toLocal}' on this gateway; phone numbers look like +15552223333.`);
    }
    const destination = destinationOf(address);
    if (!destination) {
      throw new GatewayError("not_allowed", `'${address.kind === "alphanumeric" ? address.name : msg.toLocal}' is a named sender that cannot receive texts.`);
    }
    const fromNumber = await deps.links.phoneOf(msg.fromBare);
    if (!fromNumber) {
      throw new GatewayError("registration_required", "Your account is not linked to a phone number on this gateway; ask its operator to link one.");
    }
    const { text, mediaUrls } = splitMedia(body, msg.oobUrls);
    if (text.length > MAX_BODY_CHARS) {
      throw new GatewayError("not_acceptable", `The message is ${text.length} characters long; SMS allows at most ${MAX_BODY_CHARS}.`);
    }

    const id = newMessageId();
    const now = Date.now();
    await deps.messages.create({
      id,
      direction: "out",
      channel: "sms",
      jid: msg.from,
      stanzaId: msg.stanzaId,
      contactJid: msg.to,
      receiptRequested: msg.receiptRequested && Boolean(msg.stanzaId),
      status: "pending",
      createdAt: now,
      updatedAt: now,
    });
    await deps.pipeline.enqueueOutbound({ id, from: fromNumber, to: destination, body: text, mediaUrls });
    deps.log.info({ msgId: id }, "outbound message queued");
    return { outcome: "queued", id };
  }

  /** Hands a queued message to the provider. Resolves when the job is finished (sent or reported). */
  async function process(job: OutboundJob): Promise<void> {
    const record = await deps.messages.get(job.id);
    if (!record) {
      deps.log.warn({ msgId: job.id }, "outbound job without a record; dropped");
      return;
    }
    // Recorded before the request: a job seen again after a crash may already have reached the
    // provider, which takes no idempotency key. Never resend blindly (GATEWAY.md delivery guarantees).
    if (!(await deps.messages.markOnce(job.id, "attempt"))) {
      if (record.status === "pending") {
        await deps.messages.advance(job.id, "unknown");
        await reportError(record.id, "wait", "remote-server-timeout", "The gateway restarted while sending this message; it may or may not have been delivered, so it was not sent again.");
      }
      return;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await deps.provider.send({ id: job.id, from: job.from, to: job.to, body: job.body, mediaUrls: job.mediaUrls });
        await deps.messages.advance(job.id, result.status, { providerId: result.providerId });
        deps.log.info({ msgId: job.id, sid: result.providerId, status: result.status }, "sent to provider");
        return;
      } catch (err) {
        if (!(err instanceof ProviderError)) throw err;
        const f = err.failure;
        if (f.kind === "retry" && attempt < deps.retry.maxAttempts) {
          const delay = backoff(deps.retry.baseMs, attempt);
          deps.log.warn({ msgId: job.id, code: f.code, httpStatus: f.httpStatus, attempt, delay }, "provider busy; retrying");
          await sleep(delay);
          continue;
        }
        const status = f.kind === "ambiguous" ? "unknown" : "failed";
        await deps.messages.advance(job.id, status, { errorCode: f.code });
        const mapped = mapProviderFailure(f, { to: job.to });
        deps.log.warn({ msgId: job.id, code: f.code, httpStatus: f.httpStatus, kind: f.kind }, "provider refused message");
        await reportError(job.id, mapped.type, mapped.condition, mapped.text);
        return;
      }
    }
  }

  /** Queues one error reply to the original stanza (never two for one message). */
  async function reportError(id: string, type: Extract<XmppDelivery, { kind: "error" }>["type"], condition: string, text: string): Promise<void> {
    const record = await deps.messages.get(id);
    if (!record?.stanzaId) return; // nothing to answer to (the client sent no id)
    if (!(await deps.messages.markOnce(id, "error"))) return;
    await deps.pipeline.enqueueToXmpp({ kind: "error", id, from: record.contactJid, to: record.jid, replyTo: record.stanzaId, condition, type, text });
  }

  return { accept, process, reportError };
}

export type Outbound = ReturnType<typeof createOutbound>;

/**
 * A client that uploads a file (XEP-0363) sends its URL as the body and as XEP-0066 OOB; that URL is
 * media, not text. Other text stays the caption.
 */
export function splitMedia(body: string, oobUrls: string[]): { text: string; mediaUrls: string[] } {
  const media = oobUrls.filter((u) => /^https?:\/\//i.test(u));
  let text = body;
  for (const u of media) {
    if (text.trim() === u) text = "";
    else text = text.split("\n").filter((line) => line.trim() !== u).join("\n");
  }
  return { text: text.trim() ? text : "", mediaUrls: media.slice(0, 10) };
}

/** Exponential backoff with full jitter in the upper half: base·2^(n-1) · [0.5, 1). */
export function backoff(baseMs: number, attempt: number, capMs = 5 * 60_000): number {
  const exp = Math.min(capMs, baseMs * 2 ** (attempt - 1));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}
