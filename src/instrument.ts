// Metrics at the edges: each wrapper takes a port, counts and times what passes through it, and
// behaves exactly like the port it wraps. The core stays unaware of Prometheus.
import { parseContactLocalpart } from "./core/model/addresses.js";
import type { Inbound } from "./core/flows/sms-in.js";
import type { XmppDelivery } from "./core/model/message.js";
import type { Outbound } from "./core/flows/xmpp-out.js";
import { ProviderError, type SmsProvider, type WebhookSender, type XmppSink } from "./core/ports.js";
import { isGatewayError } from "./errors.js";
import type { Channel, Metrics } from "./metrics.js";

const seconds = (since: number) => (performance.now() - since) / 1000;

/** Same object, one method replaced: the rest (getters, other methods) comes through the prototype. */
function withMethod<T extends object, K extends keyof T>(target: T, key: K, replacement: T[K]): T {
  const wrapped = Object.create(target) as T;
  wrapped[key] = replacement;
  return wrapped;
}

export function instrumentProvider<P extends SmsProvider>(provider: P, m: Metrics): P {
  return withMethod(provider, "send", async (req) => {
    const started = performance.now();
    try {
      const result = await provider.send(req);
      m.providerRequest(seconds(started), "ok");
      m.message("out", "sms", "sent");
      return result;
    } catch (err) {
      const failure = err instanceof ProviderError ? err.failure : undefined;
      m.providerRequest(seconds(started), failure?.kind ?? "error");
      const code = failure?.code ?? failure?.httpStatus;
      if (code !== undefined) m.providerError(code);
      m.message("out", "sms", failure?.kind === "permanent" ? "failed" : (failure?.kind ?? "error"));
      throw err;
    }
  });
}

export function instrumentWebhookSender(sender: WebhookSender, m: Metrics): WebhookSender {
  return withMethod(sender, "send", async (url, secret, payload, signal) => {
    const started = performance.now();
    try {
      const result = await sender.send(url, secret, payload, signal);
      m.webhookRequest(seconds(started), result.kind);
      m.message("out", "webhook", result.kind === "ok" ? "delivered" : result.kind);
      return result;
    } catch (err) {
      m.webhookRequest(seconds(started), "error");
      throw err;
    }
  });
}

const channelOfContact = (jid: string): Channel => {
  const local = jid.slice(0, jid.indexOf("@"));
  // A sender the provider names oddly ("+1", "~") has a localpart that does not parse as a contact:
  // counting it must not fail a delivery that already happened (it would be delivered again).
  try {
    return parseContactLocalpart(local).kind === "webhook" ? "webhook" : "sms";
  } catch {
    return "sms";
  }
};

export function instrumentXmppSink<S extends XmppSink>(sink: S, m: Metrics): S {
  return withMethod(sink, "deliver", async (item: XmppDelivery, meta) => {
    await sink.deliver(item, meta);
    if (item.kind === "chat") m.message("in", channelOfContact(item.from), "delivered");
  });
}

export function instrumentOutbound(outbound: Outbound, m: Metrics): Outbound {
  return withMethod(outbound, "accept", async (msg) => {
    const channel = parseContactLocalpart(msg.toLocal).kind === "webhook" ? "webhook" : "sms";
    try {
      const res = await outbound.accept(msg);
      if (res.outcome !== "ignored") m.message("out", channel, res.outcome === "queued" ? "accepted" : res.outcome);
      return res;
    } catch (err) {
      m.message("out", channel, isGatewayError(err) ? "refused" : "error");
      throw err;
    }
  });
}

/** Inbound SMS webhooks and status callbacks, as the HTTP routes see them. */
export function instrumentInbound<I extends Pick<Inbound, "accept" | "applyCallback">>(inbound: I, m: Metrics): I {
  const accepting = withMethod(inbound, "accept", async (sms) => {
    const res = await inbound.accept(sms);
    m.message("in", "sms", res.outcome === "queued" ? "accepted" : res.outcome);
    return res;
  });
  return withMethod(accepting, "applyCallback", async (u) => {
    const res = await inbound.applyCallback(u);
    if (res === "applied") m.message("out", "sms", u.status);
    return res;
  });
}
