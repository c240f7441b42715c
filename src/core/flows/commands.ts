// The gateway's user commands as data. One definition serves three surfaces: XEP-0077 in-band
// registration, XEP-0050 ad-hoc commands (forms) and text commands chatted to the gateway itself, for
// clients that show neither (most do not offer registration with a component). A secret is never
// asked for in chat: chat lands in server archives and is copied to every device (carbons).
import { GatewayError, isGatewayError } from "../../errors.js";
import type { Note, Registration } from "./registration.js";

export type FieldType = "text-single" | "text-private" | "boolean" | "fixed";

/** A XEP-0004 field, without the XML (the xmpp layer renders it). */
export interface CommandField {
  /** Absent on fixed (display-only) fields. */
  var?: string;
  type: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  value?: string;
}

export type CommandName = "register" | "unregister" | "status" | "help";

export interface CommandContext {
  /** Bare JID of the user running the command. */
  jid: string;
}

export interface Command {
  name: CommandName;
  title: string;
  /** One line, for the help text and the command list. */
  help: string;
  /** Shown above the form. */
  instructions?: string;
  /** What a form asks for; none means the command runs at once. */
  fields(ctx: CommandContext): Promise<CommandField[]>;
  /** From chat: run it, or explain how to do it with a form (when it needs a secret). */
  chat: "run" | { explain: string };
  /** Runs with the submitted values (by field var). Throws GatewayError for anything the user must fix. */
  run(ctx: CommandContext, values: Record<string, string>): Promise<Note[]>;
}

export interface CommandSetOptions {
  domain: string;
  registration: Registration;
}

/** How to reach the forms from common clients (kept short: it is sent as a chat message too; docs/users.md has the same). */
export const clientHints = (domain: string): string[] => [
  `Gajim: Accounts → Discover Services, enter ${domain}, select the gateway, then Register or Execute Command.`,
  "Cheogram / Conversations: open this contact's Commands (where your version shows them) and choose Register.",
  `profanity: /cmd exec register ${domain}, then fill in the form with /form.`,
  "Dino, Converse: no forms for gateways; register once from one of the clients above.",
];

const isTrue = (v: string | undefined): boolean => v === "1" || v === "true";

export function createCommands(opts: CommandSetOptions): Command[] {
  const { registration: reg, domain } = opts;
  const byo = reg.mode === "byo";

  const register: Command = {
    name: "register",
    title: "Register",
    help: byo ? "link your own Twilio number (needs a form: Account SID, Auth Token, number)" : "how your account gets a number on this gateway",
    instructions: byo
      ? "Bring your own Twilio number: enter your Account SID and Auth Token (Twilio console, Account Info) and one of that account's numbers. The gateway checks the number is yours, points its incoming messages here, and stores the credentials encrypted."
      : "On this gateway the operator links accounts to phone numbers.",
    async fields(ctx) {
      if (!byo) return [];
      const now = await reg.status(ctx.jid);
      return [
        { var: "account_sid", type: "text-single", label: "Twilio Account SID", desc: "AC followed by 32 characters", required: true, ...(now.accountSid ? { value: now.accountSid } : {}) },
        { var: "auth_token", type: "text-private", label: "Twilio Auth Token", required: true },
        { var: "phone", type: "text-single", label: "Your Twilio number", desc: "International format, e.g. +15552223333", required: true, ...(now.phone ? { value: now.phone } : {}) },
      ];
    },
    chat: byo
      ? {
          explain: [
            "To register your own Twilio number, use a client that shows forms: run the gateway's Register command (ad-hoc commands) or its registration form.",
            "Never send your Auth Token in a chat: chats are archived on servers and copied to all your devices.",
            ...clientHints(domain),
          ].join("\n"),
        }
      : "run",
    async run(ctx, v) {
      const missing = ["account_sid", "auth_token", "phone"].filter((k) => !v[k]?.trim());
      if (byo && missing.length > 0) throw new GatewayError("not_acceptable", `Missing field${missing.length > 1 ? "s" : ""}: ${missing.join(", ")}.`, { field: missing[0] });
      const res = await reg.register(ctx.jid, { accountSid: v.account_sid ?? "", authToken: v.auth_token ?? "", phone: v.phone ?? "" });
      return res.notes;
    },
  };

  const unregister: Command = {
    name: "unregister",
    title: "Unregister",
    help: byo ? "remove your number from this gateway and delete your stored Twilio credentials" : "remove your number from this gateway",
    async fields() {
      return [{ var: "confirm", type: "boolean", label: byo ? "Remove my number and delete my stored Twilio credentials" : "Remove my number from this gateway", required: true, value: "0" }];
    },
    chat: "run", // typing the word is the confirmation
    async run(ctx, v) {
      if (v.confirm !== undefined && !isTrue(v.confirm)) return [{ type: "info", text: "Nothing changed." }];
      const res = await reg.unregister(ctx.jid);
      if (!res.removed) throw new GatewayError("registration_required", "You are not registered: this account has no number on this gateway.");
      const what = res.phone ? `Your account no longer sends or receives texts as ${res.phone}.` : "Your registration was removed.";
      return [
        {
          type: "info",
          text: res.hadCredentials ? `${what} Your Twilio credentials were deleted from this gateway (the number's webhook at Twilio still points here; change it in the console if you wish).` : what,
        },
      ];
    },
  };

  const status: Command = {
    name: "status",
    title: "Show my number",
    help: "show the number your account sends from",
    async fields() {
      return [];
    },
    chat: "run",
    async run(ctx) {
      const s = await reg.status(ctx.jid);
      if (!s.phone) {
        const how = byo ? "Run the Register command from a client that shows forms to bring your own Twilio number." : "Ask the operator of this gateway to link one.";
        return [{ type: "info", text: `${ctx.jid} is not linked to a phone number. ${how}` }];
      }
      const via = s.accountSid ? ` with your own Twilio account ${s.accountSid}` : "";
      return [{ type: "info", text: `${ctx.jid} sends and receives texts as ${s.phone}${via}. Text someone by writing to +15552223333@${domain} (their number in international format).` }];
    },
  };

  const list: Command[] = [register, unregister, status];
  const help: Command = {
    name: "help",
    title: "Help",
    help: "what this gateway does and the commands it knows",
    async fields() {
      return [];
    },
    chat: "run",
    async run() {
      return [{ type: "info", text: helpText(domain, [...list, help]) }];
    },
  };
  list.push(help);
  return list;
}

export function helpText(domain: string, commands: Command[]): string {
  return [
    `This is an SMS gateway. To text a phone number, add a contact such as +15552223333@${domain} (international format) and write to it.`,
    "Commands (write the word to me, or use your client's ad-hoc commands):",
    ...commands.map((c) => `• ${c.name} — ${c.help}`),
  ].join("\n");
}

/** Runs a command and renders its outcome as plain text lines (chat). Errors become their text. */
async function runToText(cmd: Command, ctx: CommandContext, values: Record<string, string>): Promise<string> {
  try {
    const notes = await cmd.run(ctx, values);
    return notes.map((n) => (n.type === "warn" ? `Warning: ${n.text}` : n.text)).join("\n");
  } catch (err) {
    if (isGatewayError(err)) return err.userText;
    throw err;
  }
}

/**
 * A chat message to the gateway itself: the first word picks the command (anything else gets help).
 * Returns the reply text.
 */
export async function runChatCommand(commands: Command[], ctx: CommandContext, text: string, domain: string): Promise<string> {
  const word = text.trim().split(/\s+/)[0]?.toLowerCase().replace(/^[/!]/, "") ?? "";
  const cmd = commands.find((c) => c.name === word);
  if (!cmd) return helpText(domain, commands);
  if (cmd.chat !== "run") {
    // Whatever followed the word is ignored; if it was a secret, it is in the archive now.
    const extra = text.trim().split(/\s+/).length > 1;
    return extra
      ? `${cmd.chat.explain}\nWhat you wrote after "${cmd.name}" was not used. If it contained your Auth Token, change the token in the Twilio console: the chat keeps a copy.`
      : cmd.chat.explain;
  }
  return runToText(cmd, ctx, {});
}
