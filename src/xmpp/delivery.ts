// Queued deliveries written to the XMPP server, and the proof that it processed them. XEP-0114
// acknowledges nothing: after a batch the engine asks for a barrier, an IQ ping to our own domain,
// whose answer proves every stanza written before it was processed; bounces for those writes
// (<message type='error'>) arrived before it (core/delivery/bounces.ts keeps them per write).
import xml, { type Element } from "@xmpp/xml";
import { createBounceLedger } from "../core/delivery/bounces.js";
import { deliveryKey, type XmppDelivery } from "../core/model/message.js";
import { GiveUp, RetryLater, type DeliveryMeta, type XmppOut } from "../core/ports.js";
import type { Logger } from "../logger.js";
import type { Connection } from "./connection.js";
import { deliveryStanza, MAX_DELIVERY_BYTES, NS } from "./stanzas.js";

export interface LinkSocket {
  cork(): void;
  uncork(): void;
  pause(): unknown;
  resume(): unknown;
}

export interface DeliveryOptions {
  connection: Connection;
  domain: string;
  log: Logger;
  /** A delivery this long after acceptance carries XEP-0203 <delay/>. */
  lateAfterMs?: number;
  barrierTimeoutMs?: number;
}

export type XmppDeliveries = XmppOut & {
  /** A bounce (a <message type='error'> for a stanza we wrote): noted for the barrier that covers its write. */
  noteBounce(stanza: Element): void;
};

export function createDeliveries(opts: DeliveryOptions): XmppDeliveries {
  const { xmpp } = opts.connection;
  const log = opts.log;
  // Two seconds: a text replayed from one instance's journal after a Redis outage can come after texts
  // another instance took in directly once Redis was back (docs/operators/deploying.md); with its
  // arrival time a client can still place it where it belongs.
  const lateAfterMs = opts.lateAfterMs ?? 2_000;
  const barrierTimeoutMs = opts.barrierTimeoutMs ?? 10_000;
  // What we wrote and no barrier has proven yet, and the bounces that answered those writes: a bounce
  // counts once, for the write it answered.
  const ledger = createBounceLedger();
  // xmpp.js's socket and raw write (not in its typings): for batched writes.
  const internals = xmpp as unknown as { socket: LinkSocket | null; write(s: string): Promise<void> };

  // Stanzas written within one turn of the event loop leave in one write (one syscall, and one read at
  // the server) instead of one each.
  let corked: LinkSocket | undefined;
  function writeBatched(stanza: string): void {
    const socket = internals.socket;
    if (socket && corked !== socket && typeof socket.cork === "function") {
      socket.cork();
      corked = socket;
      setImmediate(() => {
        corked = undefined;
        socket.uncork();
      });
    }
    internals.write(stanza).catch((err: Error) => log.warn({ err: err.message }, "could not write a delivery; the barrier will fail and it goes out again"));
  }

  return {
    isOnline: () => opts.connection.isOnline(),
    noteBounce(stanza) {
      // Never answered (no error in answer to an error).
      const err = stanza.getChild("error");
      const condition = err?.getChildElements().find((c) => c.getNS() === NS.stanzas && c.name !== "text")?.name ?? "undefined-condition";
      const text = err?.getChildText("text", NS.stanzas);
      const id = stanza.attrs.id as string | undefined;
      const awaited = Boolean(id) && ledger.bounced(id!, text ? `${condition} (${text})` : condition);
      log.warn({ stanzaId: id, condition, awaited }, "message bounced by the XMPP server");
    },
    async deliver(item: XmppDelivery, meta: DeliveryMeta): Promise<void> {
      if (!opts.connection.isOnline()) throw new RetryLater("XMPP server not connected");
      // Late = it had to wait: for the server (accepted before this connection came up), for a retry,
      // or in a backlog.
      const onlineSince = opts.connection.state().onlineSince ?? 0;
      const late = item.kind === "chat" && (meta.attempt > 1 || item.acceptedAt < onlineSince || Date.now() - item.acceptedAt > lateAfterMs);
      const el = deliveryStanza(item, { domain: opts.domain, late });
      const stanza = el.toString();
      // A stanza over the server's limit would close the whole link, again at every retry: refuse it.
      const bytes = Buffer.byteLength(stanza);
      if (bytes > MAX_DELIVERY_BYTES) throw new GiveUp(`the message is ${bytes} bytes as a stanza, more than the ${MAX_DELIVERY_BYTES} an XMPP server is sure to accept`);
      if (el.attrs.id) ledger.written(el.attrs.id, deliveryKey(item));
      // Not waiting for the socket to flush: the barrier that follows a batch is what proves delivery
      // (a write lost with the connection fails it). So a batch goes out in one write.
      writeBatched(stanza);
      log.info({ msgId: item.id, kind: item.kind, attempt: meta.attempt }, "written to the XMPP server");
    },
    async barrier(): Promise<Map<string, string>> {
      if (!opts.connection.isOnline()) throw new RetryLater("XMPP server not connected");
      // An IQ to our own domain goes through the server and back: the server handles a component's
      // stanzas in order, so its answer proves every stanza written before it was processed, and any
      // bounce for those arrived before it.
      const mark = ledger.mark();
      await xmpp.iqCaller.request(xml("iq", { type: "get", to: opts.domain, from: opts.domain }, xml("ping", { xmlns: NS.ping })), barrierTimeoutMs);
      return ledger.covered(mark);
    },
  };
}
