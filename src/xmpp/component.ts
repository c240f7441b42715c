// The component's behaviour on the XMPP network: messages from users become outbound work, presence
// and IQs get the answers a good XMPP citizen gives (GATEWAY.md "XMPP citizenship"), and queued
// deliveries are written to the server.
import xml, { type Element } from "@xmpp/xml";
import type { Component, IncomingContext } from "@xmpp/component";
import type { AccessPolicy } from "../core/access.js";
import { normalizeNumber, parseContactLocalpart, type ContactAddress } from "../core/addresses.js";
import { createBounceLedger } from "../core/delivery/bounces.js";
import { isAllowed } from "../core/webhook-out.js";
import { deliveryKey, type XmppDelivery } from "../core/message.js";
import type { ChatFromUser, Outbound } from "../core/outbound.js";
import { GiveUp, RetryLater, type DeliveryMeta, type WebhookStore, type XmppOut } from "../core/ports.js";
import { GatewayError, isGatewayError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Connection } from "./connection.js";
import { runChatCommand, type Command } from "../core/commands.js";
import type { Note, Registration } from "../core/registration.js";
import { commandItems, commandNodeInfo, installAdhoc } from "./adhoc.js";
import { createIntakeGate } from "./intake.js";
import { installRegisterIq } from "./register-iq.js";
import { readExtensions, type MessageExtensions } from "./extensions.js";
import { deliveryStanza, errorElement, errorReply, MAX_DELIVERY_BYTES, NS, presence } from "./stanzas.js";

export interface ComponentOptions {
  connection: Connection;
  domain: string;
  defaultRegion: string;
  outbound: Outbound;
  webhooks: Pick<WebhookStore, "get" | "list">;
  log: Logger;
  version: string;
  /** User commands (core/commands.ts): served as XEP-0077, XEP-0050 and chat to the domain itself. */
  commands?: { list: Command[]; registration: Pick<Registration, "status" | "mode"> };
  /** ALLOWED_DOMAINS: who may send, register and run commands (everyone may still disco and ping). */
  access?: AccessPolicy;
  /** A delivery this long after acceptance carries XEP-0203 <delay/>. */
  lateAfterMs?: number;
  barrierTimeoutMs?: number;
}

interface LinkSocket {
  cork(): void;
  uncork(): void;
  pause(): unknown;
  resume(): unknown;
}

const ENCRYPTION_NAMESPACES = [NS.omemo, NS.omemo2, NS.openpgp, NS.legacyPgp];

export function createComponent(opts: ComponentOptions): XmppOut {
  const { xmpp } = opts.connection;
  const log = opts.log;
  const lateAfterMs = opts.lateAfterMs ?? 10_000;

  const barrierTimeoutMs = opts.barrierTimeoutMs ?? 10_000;
  // What we wrote and no barrier has proven yet, and the bounces that answered those writes
  // (core/delivery/bounces.ts): a bounce counts once, for the write it answered.
  const ledger = createBounceLedger();

  // xmpp.js's socket and raw write (not in its typings): for back-pressure and batched writes
  const internals = xmpp as unknown as { socket: LinkSocket | null; write(s: string): Promise<void> };
  const intake = createIntakeGate(() => internals.socket, { high: 256, low: 128 });

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

  const send = (el: Element) =>
    xmpp.send(el).catch((err: Error) => log.warn({ err: err.message, stanza: el.name }, "could not send stanza"));

  // Messages and presence. IQs are left to iqCallee below (answering them here too would send two replies).
  xmpp.middleware.use(async (ctx, next) => {
    if (ctx.name === "message") return intake.track(onMessage(ctx));
    if (ctx.name === "presence") return onPresence(ctx);
    return next();
  });

  async function onMessage(ctx: IncomingContext): Promise<void> {
    const { stanza } = ctx;
    if (ctx.type === "error") {
      // Never answered (no error in answer to an error); a bounce of a write we await is noted for its barrier.
      const err = stanza.getChild("error");
      const condition = err?.getChildElements().find((c) => c.getNS() === NS.stanzas && c.name !== "text")?.name ?? "undefined-condition";
      const text = err?.getChildText("text", NS.stanzas);
      const awaited = Boolean(ctx.id) && ledger.bounced(ctx.id, text ? `${condition} (${text})` : condition);
      log.warn({ stanzaId: ctx.id, condition, awaited }, "message bounced by the XMPP server");
      return;
    }
    if (!ctx.from || !ctx.to) return;
    const fromBare = ctx.from.bare().toString();
    const refused = opts.access?.userRefused(fromBare);
    if (refused) {
      // Chat states and receipts from a stranger are dropped; anything with words gets the reason.
      if (stanza.getChild("body")) await send(errorReply(stanza, refused.stanzaType, refused.condition, refused.userText));
      log.info({ domain: ctx.from.domain }, "message from a domain this gateway does not serve refused");
      return;
    }
    if (!ctx.to.local) return onMessageToGateway(ctx);
    try {
      // Reactions, retractions, corrections: their fallback bodies (XEP-0428) are for old clients, not
      // text a person wrote; the core renders them (readExtensions, core/chat-extensions.ts).
      const ext = readExtensions(stanza);
      if (ext.drop) return;
      const res = await opts.outbound.accept(readChat(ctx, ext));
      if (res.outcome === "ignored") log.debug({ reason: res.reason }, "message not sent as SMS");
      if (res.outcome === "ignored" && res.notice) {
        await send(xml("message", { type: "chat", from: ctx.to.bare().toString(), to: ctx.from.toString() }, xml("body", {}, res.notice)));
      }
    } catch (err) {
      if (isGatewayError(err)) {
        log.info({ code: err.code, stanzaId: ctx.id }, "message refused");
        if (stanza.attrs.from) await send(errorReply(stanza, err.stanzaType, err.condition, err.userText));
      } else {
        log.error({ err, stanzaId: ctx.id }, "message handling failed");
        await send(errorReply(stanza, "wait", "internal-server-error", "The gateway could not take this message because of an internal error; it was not sent. Please try again."));
      }
    }
  }

  function readChat(ctx: IncomingContext, ext: MessageExtensions): ChatFromUser {
    const { stanza } = ctx;
    const type = (["chat", "normal", "headline", "groupchat"] as const).find((t) => t === ctx.type) ?? "normal";
    const from = ctx.from!;
    const to = ctx.to!;
    return {
      from: from.toString(),
      fromBare: from.bare().toString(),
      toLocal: to.local,
      to: to.bare().toString(),
      stanzaId: stanza.attrs.id || undefined,
      type,
      body: stanza.getChildText("body") ?? undefined,
      oobUrls: stanza.getChildren("x", NS.oob).map((x) => (x.getChildText("url") ?? "").trim()).filter(Boolean),
      encrypted: ENCRYPTION_NAMESPACES.some((ns) => stanza.getChildElements().some((c) => c.getNS() === ns)) || Boolean(stanza.getChild("encryption", NS.eme)),
      receiptRequested: Boolean(stanza.getChild("request", NS.receipts)),
      ...(ext.replaces !== undefined ? { replaces: ext.replaces } : {}),
      ...(ext.reactions !== undefined ? { reactions: ext.reactions } : {}),
      ...(ext.retracts !== undefined ? { retracts: ext.retracts } : {}),
    };
  }

  async function onMessageToGateway(ctx: IncomingContext): Promise<void> {
    const body = ctx.stanza.getChildText("body");
    if (!body?.trim() || !ctx.from) return;
    let reply = `This is an SMS gateway. To text a phone number, add a contact such as +15552223333@${opts.domain} (international format) and write to it.`;
    if (opts.commands) {
      try {
        reply = await runChatCommand(opts.commands.list, { jid: ctx.from.bare().toString() }, body, opts.domain);
      } catch (err) {
        log.error({ err }, "chat command failed");
        reply = "The gateway could not run this command because of an internal error; try again later.";
      }
    }
    await send(xml("message", { type: "chat", from: opts.domain, to: ctx.from.toString() }, xml("body", {}, reply)));
  }

  /** Notes for a user that their request's answer cannot carry (XEP-0077), as a chat message from the gateway. */
  async function tell(to: string, notes: Note[]): Promise<void> {
    if (notes.length === 0) return;
    const text = notes.map((n) => (n.type === "warn" ? `Warning: ${n.text}` : n.text)).join("\n");
    await send(xml("message", { type: "chat", from: opts.domain, to }, xml("body", {}, text)));
  }

  async function onPresence(ctx: IncomingContext): Promise<void> {
    if (!ctx.from || !ctx.to || ctx.type === "error") return;
    const from = ctx.to.bare().toString();
    const to = ctx.from.bare().toString();
    if (ctx.to.local) {
      try {
        await contactFor(ctx.to.local, to);
      } catch (err) {
        if (isGatewayError(err) && (ctx.type === "subscribe" || ctx.type === "probe")) {
          await send(errorReply(ctx.stanza, err.stanzaType, err.condition, err.userText));
        }
        return;
      }
    }
    switch (ctx.type) {
      case "subscribe":
        await send(presence(from, to, "subscribed"));
        await send(presence(from, ctx.from.toString()));
        return;
      case "probe":
        await send(presence(from, ctx.from.toString()));
        return;
      case "unsubscribe":
        await send(presence(from, to, "unsubscribed"));
        return;
      default:
        return; // available/unavailable/subscribed/unsubscribed need no answer
    }
  }

  // ---- IQs (exactly one reply each: iqCallee answers service-unavailable for anything unhandled)
  const { iqCallee } = xmpp;

  /**
   * What a contact localpart stands for, as seen by `asker` (a bare JID). A webhook target exists for
   * those its allow list names; to anyone else it does not (its existence is not theirs to learn).
   */
  async function contactFor(local: string, asker: string): Promise<ContactAddress> {
    const addr = parseContactLocalpart(local);
    if (addr.kind !== "webhook") return addr;
    const target = await opts.webhooks.get(addr.name);
    if (!target || !isAllowed(target.allow, asker)) throw new GatewayError("not_found", `There is no contact '${local}' on this gateway; phone numbers look like +15552223333.`);
    return addr;
  }

  iqCallee.get(NS.discoInfo, "query", async (ctx) => {
    const node = ctx.element?.attrs.node;
    const local = ctx.to?.local ?? "";
    if (node) return (!local && opts.commands && commandNodeInfo(node, opts.commands.list)) || errorElement("cancel", "item-not-found", `No such node: ${node}`);
    if (!local) {
      // Registration and commands are advertised only when they are served.
      const userCommands = opts.commands ? [NS.register, NS.commands] : [];
      return xml(
        "query",
        { xmlns: NS.discoInfo },
        xml("identity", { category: "gateway", type: "sms", name: "Switchboard SMS gateway" }),
        ...[NS.discoInfo, NS.discoItems, NS.gateway, NS.ping, NS.version, NS.receipts, ...userCommands].map((v) => xml("feature", { var: v })),
      );
    }
    let addr: ContactAddress;
    try {
      addr = await contactFor(local, ctx.from?.bare().toString() ?? "");
    } catch (err) {
      if (isGatewayError(err)) return errorElement(err.stanzaType, err.condition, err.userText);
      throw err;
    }
    return xml(
      "query",
      { xmlns: NS.discoInfo },
      // A webhook target is a bot; a number is an SMS contact (XEP-0030 registrar: client/bot, client/sms).
      xml("identity", { category: "client", type: addr.kind === "webhook" ? "bot" : "sms", name: addr.kind === "webhook" ? addr.name : local }),
      // Corrections (XEP-0308) go out as a new text marked "Correction: ", so clients may offer them.
      ...[NS.discoInfo, NS.receipts, NS.oob, NS.ping, NS.correct].map((v) => xml("feature", { var: v })),
    );
  });

  iqCallee.get(NS.discoItems, "query", async (ctx) => {
    if (ctx.to?.local) return xml("query", { xmlns: NS.discoItems });
    const node = ctx.element?.attrs.node;
    if (node === NS.commands && opts.commands) return xml("query", { xmlns: NS.discoItems, node }, ...commandItems(opts.domain, opts.commands.list));
    if (node) return errorElement("cancel", "item-not-found", `No such node: ${node}`);
    // The webhook targets the asker may use.
    const asker = ctx.from?.bare().toString() ?? "";
    const targets = (await opts.webhooks.list()).filter((t) => isAllowed(t.allow, asker));
    return xml("query", { xmlns: NS.discoItems }, ...targets.map((t) => xml("item", { jid: `${t.name}@${opts.domain}`, name: t.name })));
  });

  // XEP-0100 §6.3: number translation.
  iqCallee.get(NS.gateway, "query", (ctx) => {
    if (ctx.to?.local) return undefined;
    return xml(
      "query",
      { xmlns: NS.gateway },
      xml("desc", {}, `Enter the phone number of the person you want to text. International format (+15552223333) always works; national numbers are read as ${opts.defaultRegion}.`),
      xml("prompt", {}, "Phone number"),
    );
  });
  iqCallee.set(NS.gateway, "query", (ctx) => {
    if (ctx.to?.local) return undefined;
    const input = ctx.element?.getChildText("prompt") ?? "";
    const e164 = normalizeNumber(input, opts.defaultRegion);
    if (!e164) {
      return errorElement("modify", "not-acceptable", `'${input.slice(0, 40)}' is not a phone number; try the international format, e.g. +15552223333.`);
    }
    // XEP-0100 §6.3.2 (the <jid/> element; <prompt/> is the deprecated form some clients read).
    return xml("query", { xmlns: NS.gateway }, xml("jid", {}, `${e164}@${opts.domain}`), xml("prompt", {}, `${e164}@${opts.domain}`));
  });

  iqCallee.get(NS.ping, "ping", () => true);

  iqCallee.get(NS.version, "query", (ctx) => {
    if (ctx.to?.local) return undefined;
    return xml("query", { xmlns: NS.version }, xml("name", {}, "Switchboard"), xml("version", {}, opts.version));
  });

  if (opts.commands) {
    // Registration and commands are for the served domains: a stranger gets forbidden, saying why.
    const access = opts.access;
    const refusedOr = (handler: Parameters<Component["iqCallee"]["get"]>[2]): typeof handler => (ctx) => {
      const refused = access?.userRefused(ctx.from?.bare().toString() ?? "");
      return refused ? errorElement(refused.stanzaType, refused.condition, refused.userText) : handler(ctx);
    };
    const served: Component["iqCallee"] = access
      ? { get: (ns, name, handler) => iqCallee.get(ns, name, refusedOr(handler)), set: (ns, name, handler) => iqCallee.set(ns, name, refusedOr(handler)) }
      : iqCallee;
    installRegisterIq(served, { commands: opts.commands.list, registration: opts.commands.registration, tell });
    installAdhoc(served, { commands: opts.commands.list });
  }

  return {
    isOnline: () => opts.connection.isOnline(),
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