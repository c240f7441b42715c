// XMPP → webhook target: a user's message to `name@D` is POSTed, signed, to the target's URL; the
// answer becomes a reply, a receipt or an error reply. The same delivery engine as SMS carries it.
import { GatewayError } from "../../errors.js";
import type { WebhookJob, XmppDelivery } from "../model/message.js";
import { isFinal, newMessageId, newOutgoingRecord } from "../model/message.js";
import { GiveUp, type DeliveryMeta, type MessageStore, type Delivery, type WebhookSender, type WebhookStore } from "../ports.js";
import { backoff } from "../policy/retry-policy.js";
import { abortableSleep, SendInterrupted } from "../util/sleep.js";
import { recordAndQueue } from "./queue-outgoing.js";

/** Whether `bareJid` matches an allow entry: the exact bare JID, or `*@domain`. */
export function isAllowed(allow: readonly string[], bareJid: string): boolean {
  const jid = bareJid.toLowerCase();
  const domain = jid.slice(jid.indexOf("@") + 1);
  return allow.some((entry) => {
    const e = entry.toLowerCase();
    return e === jid || (e.startsWith("*@") && e.slice(2) === domain);
  });
}

export interface WebhookOutDeps {
  domain: string;
  webhooks: WebhookStore;
  sender: WebhookSender;
  messages: MessageStore;
  delivery: Delivery;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  retry: { baseMs: number; deadlineMs: number };
  reportError(id: string, type: Extract<XmppDelivery, { kind: "error" }>["type"], condition: string, text: string): Promise<void>;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface WebhookMessage {
  from: string; // full JID
  fromBare: string;
  name: string;
  stanzaId?: string;
  body: string;
  mediaUrls: string[];
  receiptRequested: boolean;
  /** Idempotency key (userStanzaKey): a second message under it is not queued. */
  repeatKey?: string;
}

export function createWebhookOut(deps: WebhookOutDeps) {
  const sleep = deps.sleep ?? abortableSleep;
  const contact = (name: string) => `${name}@${deps.domain}`;

  /** Checks the target and the sender, records and queues. Throws GatewayError for the sender. */
  async function accept(msg: WebhookMessage): Promise<string> {
    const target = await deps.webhooks.get(msg.name);
    if (!target) throw new GatewayError("not_found", `There is no contact '${msg.name}' on this gateway; phone numbers look like +15552223333.`);
    if (!isAllowed(target.allow, msg.fromBare)) {
      throw new GatewayError("forbidden", `You are not allowed to message ${contact(msg.name)}; its operator decides who may.`);
    }
    const id = newMessageId();
    const now = Date.now();
    const record = newOutgoingRecord({ id, channel: "webhook", jid: msg.from, stanzaId: msg.stanzaId, contactJid: contact(msg.name), receiptRequested: msg.receiptRequested, now });
    const job: WebhookJob = { channel: "webhook", id, from: msg.fromBare, to: msg.name, body: msg.body, mediaUrls: msg.mediaUrls, acceptedAt: now };
    if (!(await recordAndQueue(deps, record, job, msg.repeatKey))) {
      deps.log.info({ msgId: id, webhook: msg.name }, "repeat of a message already queued: not queued again");
      return id;
    }
    deps.log.info({ msgId: id, webhook: msg.name }, "webhook message queued");
    return id;
  }

  /**
   * POSTs until the receiver answers or the deadline passes. Throws GiveUp at the deadline (the
   * delivery engine dead-letters it and the sender hears of it), and lets a stop interrupt a wait.
   */
  async function process(job: WebhookJob, meta?: Pick<DeliveryMeta, "signal">): Promise<void> {
    const record = await deps.messages.get(job.id);
    if (!record) return;
    // Read again after a stop between recording the answer and acknowledging the job: it was delivered.
    if (isFinal(record.status)) {
      deps.log.info({ msgId: job.id, webhook: job.to, status: record.status }, "webhook message already settled; not POSTed again");
      return;
    }
    const [target, secret] = await Promise.all([deps.webhooks.get(job.to), deps.webhooks.signingSecret(job.to)]);
    if (!target || !secret) {
      await deps.messages.advance(job.id, "failed");
      await deps.reportError(job.id, "cancel", "item-not-found", `${contact(job.to)} was removed before the message could be delivered.`);
      return;
    }
    const payload = {
      id: job.id,
      from: job.from,
      to: contact(job.to),
      body: job.body,
      timestamp: new Date(job.acceptedAt).toISOString(),
      ...(job.mediaUrls.length ? { media: job.mediaUrls } : {}),
    };
    const deadline = job.acceptedAt + deps.retry.deadlineMs;
    for (let attempt = 1; ; attempt++) {
      const result = await deps.sender.send(target.url, secret, payload, meta?.signal);
      if (result.kind === "ok") {
        await deps.messages.advance(job.id, "delivered");
        if (result.reply !== undefined && result.reply.length > 0) {
          // Replies go to the bare JID: every client of the user sees the bot's answer.
          await deps.delivery.enqueueToXmpp({ kind: "chat", id: newMessageId(), from: contact(job.to), to: job.from, body: result.reply, mediaUrls: [], acceptedAt: Date.now() });
        } else if (record.receiptRequested && record.stanzaId && (await deps.messages.markOnce(job.id, "receipt"))) {
          await deps.delivery.enqueueToXmpp({ kind: "receipt", id: job.id, from: contact(job.to), to: record.jid, receiptFor: record.stanzaId });
        }
        deps.log.info({ msgId: job.id, webhook: job.to, status: result.status, attempt }, "webhook delivered");
        return;
      }
      if (result.kind === "permanent") {
        await deps.messages.advance(job.id, "failed", result.status ? { errorCode: result.status } : undefined);
        deps.log.warn({ msgId: job.id, webhook: job.to, status: result.status }, "webhook refused the message");
        const what = [result.status ? `HTTP ${result.status}` : "", result.excerpt].filter(Boolean).join(": ");
        await deps.reportError(job.id, "cancel", conditionForStatus(result.status ?? 0), `${contact(job.to)} did not take the message${what ? `: ${what}` : ""}`);
        return;
      }
      if (meta?.signal?.aborted) throw new SendInterrupted("stopping"); // stays queued for the next start
      const wait = Math.max(result.retryAfterMs ?? 0, backoff(deps.retry.baseMs, attempt));
      if (Date.now() + wait > deadline) {
        await deps.messages.advance(job.id, "failed");
        throw new GiveUp(`${contact(job.to)} could not be reached within ${Math.round(deps.retry.deadlineMs / 1000)} s (last: ${result.reason})`);
      }
      deps.log.warn({ msgId: job.id, webhook: job.to, attempt, waitMs: wait, reason: result.reason }, "webhook unreachable; retrying");
      await sleep(wait, meta?.signal);
    }
  }

  return { accept, process };
}

export type WebhookOut = ReturnType<typeof createWebhookOut>;

function conditionForStatus(status: number): string {
  if (status === 404) return "item-not-found";
  if (status === 401 || status === 403) return "not-allowed";
  if (status === 410) return "gone";
  if (status === 413) return "not-acceptable";
  if (status >= 300 && status < 400) return "redirect";
  return "undefined-condition";
}
