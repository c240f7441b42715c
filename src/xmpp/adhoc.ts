// XEP-0050 ad-hoc commands on the gateway's domain, rendered from the command definitions
// (core/flows/commands.ts). Sessions keep no state on the server: the form carries everything, so any
// gateway instance can finish a session another one started (ejabberd spreads stanzas over instances).
import { randomUUID } from "node:crypto";
import xml, { type Element } from "@xmpp/xml";
import type { Component } from "@xmpp/component";
import type { Command } from "../core/flows/commands.js";
import type { Note } from "../core/flows/registration.js";
import { isGatewayError } from "../errors.js";
import { readForm, renderForm, NS_DATA } from "./forms.js";
import { errorElement, NS } from "./stanzas.js";

/** disco#items on the commands node: one item per command. */
export function commandItems(domain: string, commands: Command[]): Element[] {
  return commands.map((c) => xml("item", { jid: domain, node: c.name, name: c.title }));
}

/** disco#info on the commands node or a command's node; undefined for any other node. */
export function commandNodeInfo(node: string, commands: Command[]): Element | undefined {
  if (node === NS.commands) {
    return xml("query", { xmlns: NS.discoInfo, node }, xml("identity", { category: "automation", type: "command-list", name: "Commands" }));
  }
  const cmd = commands.find((c) => c.name === node);
  if (!cmd) return undefined;
  return xml(
    "query",
    { xmlns: NS.discoInfo, node },
    xml("identity", { category: "automation", type: "command-node", name: cmd.title }),
    xml("feature", { var: NS.commands }),
    xml("feature", { var: NS_DATA }),
  );
}

/** XEP-0050 §4.6: a stanza error with the commands-specific condition beside the RFC 6120 one. */
function commandError(condition: string, specific: string, text: string): Element {
  const err = errorElement("modify", condition, text);
  err.append(xml(specific, { xmlns: NS.commands }));
  return err;
}

const noteElements = (notes: Note[]): Element[] => notes.map((n) => xml("note", { type: n.type }, n.text));

export function installAdhoc(iqCallee: Component["iqCallee"], opts: { commands: Command[] }): void {
  iqCallee.set(NS.commands, "command", async (ctx) => {
    if (ctx.to?.local) return undefined;
    const el = ctx.element;
    const node = el?.attrs.node ?? "";
    const cmd = opts.commands.find((c) => c.name === node);
    if (!el || !cmd) return errorElement("cancel", "item-not-found", `No such command: ${node.slice(0, 60)}`);
    const jid = ctx.from?.bare().toString() ?? "";
    const action = el.attrs.action ?? "execute";
    const sessionid = el.attrs.sessionid ?? randomUUID();
    const answer = (status: string, ...children: (Element | undefined)[]) => xml("command", { xmlns: NS.commands, node, sessionid, status }, ...children);

    if (action === "cancel") return answer("canceled");
    if (action !== "execute" && action !== "complete" && action !== "next") {
      return commandError("bad-request", "bad-action", `The action '${action.slice(0, 20)}' is not offered by this command.`);
    }
    const fields = await cmd.fields({ jid });
    const submitted = readForm(el.getChild("x", NS_DATA));
    if (fields.length > 0 && !submitted) {
      return answer(
        "executing",
        xml("actions", { execute: "complete" }, xml("complete")),
        renderForm({ type: "form", title: cmd.title, ...(cmd.instructions ? { instructions: cmd.instructions } : {}), fields }),
      );
    }
    let notes: Note[];
    try {
      notes = await cmd.run({ jid }, submitted?.values ?? {});
    } catch (err) {
      // XEP-0050 §3.4: the command completed, unsuccessfully; the note says why (the user re-runs it).
      if (!isGatewayError(err)) throw err;
      notes = [{ type: "error", text: err.userText }];
    }
    return answer("completed", ...noteElements(notes));
  });
}
