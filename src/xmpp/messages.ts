// Messages from users: to a contact they become outbound work (core/flows/xmpp-out.ts), to the gateway's
// own JID they are chat commands; a bounce of one of ours goes to the deliveries' bookkeeping.
import xml, { type Element } from "@xmpp/xml";
import type { IncomingContext } from "@xmpp/component";
import type { AccessPolicy } from "../core/policy/access.js";
import { runChatCommand, type Command } from "../core/flows/commands.js";
import type { ChatFromUser, Outbound } from "../core/flows/xmpp-out.js";
import type { Note } from "../core/flows/registration.js";
import { isGatewayError } from "../errors.js";
import type { Logger } from "../logger.js";
import { errorReplyFor } from "./errors.js";
import { readExtensions, type MessageExtensions } from "./extensions.js";
import { NS } from "./stanzas.js";

const ENCRYPTION_NAMESPACES = [NS.omemo, NS.omemo2, NS.openpgp, NS.legacyPgp];

export interface MessageHandlerOptions {
  domain: string;
  outbound: Pick<Outbound, "accept">;
  /** ALLOWED_DOMAINS: who may send (everyone else is told why, when they wrote words). */
  access?: AccessPolicy;
  /** Chat commands to the gateway's own JID; absent: a short help text. */
  commands?: Command[];
  /** A bounce of a stanza we wrote. */
  onBounce(stanza: Element): void;
  send(el: Element): Promise<unknown>;
  log: Logger;
}

export function messageHandler(opts: MessageHandlerOptions) {
  const { log, send } = opts;

  async function onMessage(ctx: IncomingContext): Promise<void> {
    const { stanza } = ctx;
    // Never answered (no error in answer to an error).
    if (ctx.type === "error") return opts.onBounce(stanza);
    if (!ctx.from || !ctx.to) return;
    const fromBare = ctx.from.bare().toString();
    const refused = opts.access?.userRefused(fromBare);
    if (refused) {
      // Chat states and receipts from a stranger are dropped; anything with words gets the reason.
      if (stanza.getChild("body")) await send(errorReplyFor(stanza, refused)!);
      log.info({ domain: ctx.from.domain }, "message from a domain this gateway does not serve refused");
      return;
    }
    if (!ctx.to.local) return onMessageToGateway(ctx);
    try {
      // Reactions, retractions, corrections: their fallback bodies (XEP-0428) are for old clients, not
      // text a person wrote; the core renders them (readExtensions, core/model/chat-extensions.ts).
      const ext = readExtensions(stanza);
      if (ext.drop) return;
      const res = await opts.outbound.accept(readChat(ctx, ext));
      if (res.outcome === "ignored") log.debug({ reason: res.reason }, "message not sent as SMS");
      if (res.outcome === "ignored" && res.notice) {
        await send(xml("message", { type: "chat", from: ctx.to.bare().toString(), to: ctx.from.toString() }, xml("body", {}, res.notice)));
      }
    } catch (err) {
      if (isGatewayError(err)) log.info({ code: err.code, stanzaId: ctx.id }, "message refused");
      else log.error({ err, stanzaId: ctx.id }, "message handling failed");
      const reply = stanza.attrs.from ? errorReplyFor(stanza, err, "The gateway could not take this message because of an internal error; it was not sent. Please try again.") : undefined;
      if (reply) await send(reply);
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
      oobUrls: stanza
        .getChildren("x", NS.oob)
        .map((x) => (x.getChildText("url") ?? "").trim())
        .filter(Boolean),
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
        reply = await runChatCommand(opts.commands, { jid: ctx.from.bare().toString() }, body, opts.domain);
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

  return { onMessage, tell };
}
