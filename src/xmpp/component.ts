// The component on the XMPP network (docs/developers/design.md "XMPP citizenship"): messages from users
// (messages.ts), presence (presence.ts), what it answers about itself and its contacts (disco.ts),
// registration and commands (register-iq.ts, adhoc.ts) for the domains it serves, and the queued
// deliveries it writes to the server (delivery.ts). This file only puts them together.
import type { Element } from "@xmpp/xml";
import type { Component } from "@xmpp/component";
import type { AccessPolicy } from "../core/policy/access.js";
import type { Command } from "../core/flows/commands.js";
import type { Outbound } from "../core/flows/xmpp-out.js";
import type { WebhookStore, XmppOut } from "../core/ports.js";
import type { Registration } from "../core/flows/registration.js";
import type { Logger } from "../logger.js";
import { installAdhoc } from "./adhoc.js";
import type { Connection } from "./connection.js";
import { contactResolver } from "./contacts.js";
import { createDeliveries, type LinkSocket } from "./delivery.js";
import { installDisco } from "./disco.js";
import { createIntakeGate } from "./intake.js";
import { messageHandler } from "./messages.js";
import { presenceHandler } from "./presence.js";
import { installRegisterIq } from "./register-iq.js";
import { errorElement } from "./stanzas.js";

export interface ComponentOptions {
  connection: Connection;
  domain: string;
  defaultRegion: string;
  outbound: Outbound;
  webhooks: Pick<WebhookStore, "get" | "list">;
  log: Logger;
  version: string;
  /** User commands (core/flows/commands.ts): served as XEP-0077, XEP-0050 and chat to the domain itself. */
  commands?: { list: Command[]; registration: Pick<Registration, "status" | "mode"> };
  /** ALLOWED_DOMAINS: who may send, register and run commands (everyone may still disco and ping). */
  access?: AccessPolicy;
  /** A delivery this long after acceptance carries XEP-0203 <delay/>. */
  lateAfterMs?: number;
  barrierTimeoutMs?: number;
}

export function createComponent(opts: ComponentOptions): XmppOut & { drain(): Promise<void> } {
  const { xmpp } = opts.connection;
  const log = opts.log;
  const send = (el: Element) => xmpp.send(el).catch((err: Error) => log.warn({ err: err.message, stanza: el.name }, "could not send stanza"));

  const deliveries = createDeliveries({
    connection: opts.connection,
    domain: opts.domain,
    log,
    ...(opts.lateAfterMs !== undefined ? { lateAfterMs: opts.lateAfterMs } : {}),
    ...(opts.barrierTimeoutMs !== undefined ? { barrierTimeoutMs: opts.barrierTimeoutMs } : {}),
  });
  const contactFor = contactResolver(opts.webhooks);
  const messages = messageHandler({
    domain: opts.domain,
    outbound: opts.outbound,
    ...(opts.access ? { access: opts.access } : {}),
    ...(opts.commands ? { commands: opts.commands.list } : {}),
    onBounce: (stanza) => deliveries.noteBounce(stanza),
    send,
    log,
  });
  const onPresence = presenceHandler({ contactFor, send });

  // The server's socket is paused while too many messages are being handled (back-pressure).
  const socket = () => (xmpp as unknown as { socket: LinkSocket | null }).socket;
  const intake = createIntakeGate(socket, { high: 256, low: 128 });

  // Messages and presence. IQs are left to iqCallee (answering them here too would send two replies).
  xmpp.middleware.use(async (ctx, next) => {
    if (ctx.name === "message") return intake.track(messages.onMessage(ctx));
    if (ctx.name === "presence") return onPresence(ctx);
    return next();
  });

  installDisco(xmpp.iqCallee, {
    domain: opts.domain,
    defaultRegion: opts.defaultRegion,
    version: opts.version,
    webhooks: opts.webhooks,
    contactFor,
    ...(opts.commands ? { commands: opts.commands.list } : {}),
  });

  if (opts.commands) {
    // Registration and commands are for the served domains: a stranger gets forbidden, saying why.
    const { iqCallee } = xmpp;
    const access = opts.access;
    const refusedOr =
      (handler: Parameters<Component["iqCallee"]["get"]>[2]): typeof handler =>
      (ctx) => {
        const refused = access?.userRefused(ctx.from?.bare().toString() ?? "");
        return refused ? errorElement(refused.stanzaType, refused.condition, refused.userText) : handler(ctx);
      };
    const served: Component["iqCallee"] = access
      ? { get: (ns, name, handler) => iqCallee.get(ns, name, refusedOr(handler)), set: (ns, name, handler) => iqCallee.set(ns, name, refusedOr(handler)) }
      : iqCallee;
    installRegisterIq(served, { commands: opts.commands.list, registration: opts.commands.registration, tell: messages.tell });
    installAdhoc(served, { commands: opts.commands.list });
  }

  return {
    isOnline: deliveries.isOnline,
    deliver: deliveries.deliver,
    barrier: deliveries.barrier,
    /** Waits for the messages the server already handed over to be taken in (or refused): a stop must not drop them. */
    drain: () => intake.idle(),
  };
}
