// What the gateway answers about itself and its contacts (docs/developers/design.md "XMPP
// citizenship"): service discovery (XEP-0030), number translation (XEP-0100 §6.3), ping (XEP-0199),
// version (XEP-0092). Exactly one reply per IQ: iqCallee answers service-unavailable for the rest.
import xml from "@xmpp/xml";
import type { Component } from "@xmpp/component";
import { normalizeNumber } from "../core/model/addresses.js";
import type { Command } from "../core/flows/commands.js";
import type { WebhookStore } from "../core/ports.js";
import { isAllowed } from "../core/flows/webhook-out.js";
import { commandItems, commandNodeInfo } from "./adhoc.js";
import type { ContactResolver } from "./contacts.js";
import { answeringErrors } from "./errors.js";
import { errorElement, NS } from "./stanzas.js";

export interface DiscoOptions {
  domain: string;
  defaultRegion: string;
  version: string;
  webhooks: Pick<WebhookStore, "list">;
  contactFor: ContactResolver;
  /** User commands, when served: advertised with registration, and listed under their node. */
  commands?: Command[];
}

export function installDisco(iqCallee: Component["iqCallee"], opts: DiscoOptions): void {
  iqCallee.get(
    NS.discoInfo,
    "query",
    answeringErrors(async (ctx) => {
      const node = ctx.element?.attrs.node;
      const local = ctx.to?.local ?? "";
      if (node) return (!local && opts.commands && commandNodeInfo(node, opts.commands)) || errorElement("cancel", "item-not-found", `No such node: ${node}`);
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
      const addr = await opts.contactFor(local, ctx.from?.bare().toString() ?? "");
      return xml(
        "query",
        { xmlns: NS.discoInfo },
        // A webhook target is a bot; a number is an SMS contact (XEP-0030 registrar: client/bot, client/sms).
        xml("identity", { category: "client", type: addr.kind === "webhook" ? "bot" : "sms", name: addr.kind === "webhook" ? addr.name : local }),
        // Corrections (XEP-0308) go out as a new text marked "Correction: ", so clients may offer them.
        ...[NS.discoInfo, NS.receipts, NS.oob, NS.ping, NS.correct].map((v) => xml("feature", { var: v })),
      );
    }),
  );

  iqCallee.get(NS.discoItems, "query", async (ctx) => {
    if (ctx.to?.local) return xml("query", { xmlns: NS.discoItems });
    const node = ctx.element?.attrs.node;
    if (node === NS.commands && opts.commands) return xml("query", { xmlns: NS.discoItems, node }, ...commandItems(opts.domain, opts.commands));
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
}
