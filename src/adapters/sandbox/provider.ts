// An in-memory SMS provider for the demo and for tests without Twilio: it records what would have
// been sent and plays back a delivery lifecycle so receipts can be seen end to end.
import { randomBytes } from "node:crypto";
import { pickOwnMessage } from "../../core/policy/lookup-match.js";
import type { MessageStatus } from "../../core/model/message.js";
import {
  ProviderError,
  type LoggedInboundSms,
  type ProviderMessageLog,
  type SmsLookupRequest,
  type SmsLookupResult,
  type SmsProvider,
  type SmsSendRequest,
  type SmsSendResult,
} from "../../core/ports.js";
import { describeProviderCode } from "../../core/policy/provider-errors.js";

export interface SandboxMessage {
  /** Our message id (out) or the inbound message id (in). */
  id: string;
  /** The fake provider id (`SB…`); inbound entries use their own id. */
  providerId: string;
  direction: "out" | "in";
  from: string;
  to: string;
  body: string;
  media: string[];
  at: string; // ISO 8601
  status: MessageStatus;
}

export interface SandboxInbound {
  id: string;
  /** The provider id it was accepted with (the repeat check's key); default: `id`. */
  providerId?: string;
  from: string;
  to: string;
  body: string;
  media?: string[];
}

export interface SandboxProviderOptions {
  onStatus: (id: string, providerId: string, status: MessageStatus) => void | Promise<void>;
  /** Delay before each simulated status step; default 50 ms. */
  stepMs?: number;
  /** Kept messages (newest win); default 1000. */
  limit?: number;
  /** Called when `onStatus` throws, so a failing consumer is visible without crashing the timer. */
  onError?: (err: unknown) => void;
}

export type SandboxProvider = SmsProvider &
  // Its message log is the kept list, so `switchboard reconcile` works against the sandbox too.
  ProviderMessageLog & {
    messages(): SandboxMessage[];
    recordInbound(m: SandboxInbound): SandboxMessage;
    /** Calls `listener` with a copy of each new message and of each message whose status changed; returns the unsubscribe. */
    onMessage(listener: (m: SandboxMessage) => void): () => void;
    close(): Promise<void>;
  };

// Twilio's documented magic test numbers (test credentials), so the demo can show error replies.
const MAGIC_TO: ReadonlyMap<string, number> = new Map([
  ["+15005550001", 21211],
  ["+15005550002", 21612],
  ["+15005550003", 21408],
  ["+15005550004", 21610],
  ["+15005550009", 21614],
]);

export function createSandboxProvider(opts: SandboxProviderOptions): SandboxProvider {
  const stepMs = opts.stepMs ?? 50;
  const limit = opts.limit ?? 1000;
  const list: SandboxMessage[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const listeners = new Set<(m: SandboxMessage) => void>();
  let closed = false;

  const emit = (m: SandboxMessage): void => {
    for (const l of listeners) {
      try {
        l({ ...m, media: [...m.media] });
      } catch (err) {
        opts.onError?.(err);
      }
    }
  };

  const push = (m: SandboxMessage): void => {
    list.push(m);
    if (list.length > limit) list.splice(0, list.length - limit);
    emit(m);
  };

  const later = (fn: () => Promise<void>): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) void fn();
    }, stepMs);
    // The demo lifecycle must never keep a shutting-down process alive.
    t.unref();
    timers.add(t);
  };

  const report = async (m: SandboxMessage, status: MessageStatus): Promise<void> => {
    m.status = status;
    emit(m);
    try {
      await opts.onStatus(m.id, m.providerId, status);
    } catch (err) {
      opts.onError?.(err);
    }
  };

  return {
    name: "sandbox",

    async send(req: SmsSendRequest): Promise<SmsSendResult> {
      const code = MAGIC_TO.get(req.to);
      if (code !== undefined) {
        throw new ProviderError({ kind: "permanent", code, httpStatus: 400, message: describeProviderCode(code, { to: req.to }) ?? `error ${code}` });
      }
      const m: SandboxMessage = {
        id: req.id,
        providerId: "SB" + randomBytes(16).toString("hex"),
        direction: "out",
        from: req.from,
        to: req.to,
        body: req.body,
        media: [...req.mediaUrls],
        at: new Date().toISOString(),
        status: "queued",
      };
      push(m);
      // Like Twilio: the create answer carries the first status, callbacks bring the rest, in order,
      // and a failed callback does not stop the later ones.
      later(async () => {
        await report(m, "sent");
        later(() => report(m, "delivered"));
      });
      return { providerId: m.providerId, status: "queued" };
    },

    async lookup(req: SmsLookupRequest): Promise<SmsLookupResult> {
      // Same rules as Twilio's lookup, over the kept list (complete unless `limit` dropped older ones).
      const mine = list
        .filter((m) => m.direction === "out" && m.from === req.from && m.to === req.to)
        .map((m) => ({ providerId: m.providerId, status: m.status, body: m.body, mediaCount: m.media.length, createdAt: Date.parse(m.at) }));
      return pickOwnMessage(mine, req, { truncated: list.length >= limit });
    },

    mainAccount: "sandbox",

    async *listInbound({ since }): AsyncIterable<LoggedInboundSms> {
      const inbound = list.filter((m) => m.direction === "in" && Date.parse(m.at) >= since).reverse();
      for (const m of inbound) {
        yield { providerId: m.providerId, from: m.from, to: m.to, body: m.body, media: m.media.map((url) => ({ url })), sentAt: Date.parse(m.at), complete: true };
      }
    },

    async fetchStatus({ providerId }) {
      const m = list.find((x) => x.providerId === providerId);
      return m && { status: m.status };
    },

    messages(): SandboxMessage[] {
      return list.map((m) => ({ ...m, media: [...m.media] }));
    },

    recordInbound(inbound: SandboxInbound): SandboxMessage {
      const m: SandboxMessage = {
        id: inbound.id,
        providerId: inbound.providerId ?? inbound.id,
        direction: "in",
        from: inbound.from,
        to: inbound.to,
        body: inbound.body,
        media: [...(inbound.media ?? [])],
        at: new Date().toISOString(),
        status: "received",
      };
      push(m);
      return { ...m, media: [...m.media] };
    },

    onMessage(listener: (m: SandboxMessage) => void): () => void {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },

    async close(): Promise<void> {
      closed = true;
      listeners.clear();
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}
