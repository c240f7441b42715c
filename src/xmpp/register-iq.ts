// XEP-0077 in-band registration on the gateway's domain, driven by the register and unregister
// command definitions (core/flows/commands.ts), so it behaves exactly like the ad-hoc and chat versions.
import xml from "@xmpp/xml";
import type { Component, IncomingContext } from "@xmpp/component";
import type { Command } from "../core/flows/commands.js";
import type { Note, Registration } from "../core/flows/registration.js";
import { answeringErrors } from "./errors.js";
import { readForm, renderForm, NS_DATA } from "./forms.js";
import { errorElement, NS } from "./stanzas.js";

export interface RegisterIqOptions {
  commands: Command[];
  registration: Pick<Registration, "status" | "mode">;
  /** XEP-0077 has no place for notes in its answer: a successful registration's notes go as a message. */
  tell(to: string, notes: Note[]): Promise<void>;
}

function byName(commands: Command[], name: string): Command {
  const c = commands.find((x) => x.name === name);
  if (!c) throw new Error(`command ${name} is not defined`);
  return c;
}

export function installRegisterIq(iqCallee: Component["iqCallee"], opts: RegisterIqOptions): void {
  const register = byName(opts.commands, "register");
  const unregister = byName(opts.commands, "unregister");
  const asker = (ctx: IncomingContext) => ctx.from?.bare().toString() ?? "";

  iqCallee.get(NS.register, "query", async (ctx) => {
    if (ctx.to?.local) return undefined; // contacts take no registration
    const jid = asker(ctx);
    const [status, fields] = await Promise.all([opts.registration.status(jid), register.fields({ jid })]);
    const byo = opts.registration.mode === "byo";
    const current = status.phone
      ? `This account sends and receives texts as ${status.phone}. ${byo ? "Submit the form to change it; unregister" : "Unregister"} to remove it.`
      : byo
        ? ""
        : "This account has no number yet.";
    const instructions = [register.instructions ?? "", current].filter(Boolean).join(" ");
    return xml(
      "query",
      { xmlns: NS.register },
      status.phone ? xml("registered") : undefined,
      xml("instructions", {}, instructions),
      renderForm({ type: "form", title: `${register.title} with the SMS gateway`, instructions, formType: NS.register, fields }),
    );
  });

  iqCallee.set(
    NS.register,
    "query",
    answeringErrors(async (ctx) => {
      if (ctx.to?.local) return undefined;
      const jid = asker(ctx);
      const query = ctx.element;
      if (query?.getChild("remove")) {
        // XEP-0077 §3.2: <remove/> must be alone.
        if (query.getChildElements().length > 1) return errorElement("modify", "bad-request", "<remove/> must be the only child of the query.");
        await unregister.run({ jid }, {});
        return true;
      }
      const form = readForm(query?.getChild("x", NS_DATA));
      if (!form) return errorElement("modify", "not-acceptable", "Registration with this gateway needs the data form it offers (get the form first).");
      if (form.formType !== undefined && form.formType !== NS.register) return errorElement("modify", "bad-request", `Unexpected FORM_TYPE ${form.formType.slice(0, 60)}.`);
      const notes = await register.run({ jid }, form.values);
      await opts.tell(ctx.from?.toString() ?? jid, notes);
      return true;
    }),
  );
}
