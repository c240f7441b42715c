// switchboard users link|unlink|list|show — user ⇄ number links (PUT/GET/DELETE /api/v1/users/{jid}).
import type { Command } from "commander";
import { table, type Context } from "./context.js";
import type { Action } from "./program.js";

interface Link {
  jid: string;
  phone: string;
}

const path = (jid: string) => `/api/v1/users/${encodeURIComponent(jid)}`;

export function usersCommand(program: Command, action: Action): void {
  const users = program.command("users").description("link XMPP users to phone numbers, list and unlink them");

  users
    .command("link")
    .description("link a user (bare JID) to the number they text from; replaces the user's previous number")
    .argument("<jid>", "bare JID, e.g. alice@example.com")
    .argument("<phone>", "number in international format, e.g. +15550001111")
    .addHelpText("after", "\nExample:\n  switchboard users link alice@example.com +15550001111")
    .action(
      action(async (ctx: Context, [jid, phone]) => {
        const res = await ctx.api.request<Link>("PUT", path(jid!), { phone });
        const created = res.status === 201;
        ctx.print({ ...res.data, created }, `linked ${res.data.jid} to ${res.data.phone}${created ? "" : " (replaced its previous number)"}`);
      }),
    );

  users
    .command("unlink")
    .description("unlink a user: deletes the link and everything kept about the user (queued messages, media)")
    .argument("<jid>", "bare JID")
    .addHelpText("after", "\nExample:\n  switchboard users unlink alice@example.com")
    .action(
      action(async (ctx, [jid]) => {
        await ctx.api.request("DELETE", path(jid!));
        ctx.print({ jid, unlinked: true }, `unlinked ${jid}`);
      }),
    );

  users
    .command("list")
    .description("list every linked user and number")
    .addHelpText("after", "\nExample:\n  switchboard users list --json")
    .action(
      action(async (ctx) => {
        const { data } = await ctx.api.request<{ users: Link[] }>("GET", "/api/v1/users");
        ctx.print(
          data,
          data.users.length === 0
            ? "no user is linked to a number"
            : table(
                ["JID", "PHONE"],
                data.users.map((u) => [u.jid, u.phone]),
              ),
        );
      }),
    );

  users
    .command("show")
    .description("show one user's number")
    .argument("<jid>", "bare JID")
    .action(
      action(async (ctx, [jid]) => {
        const { data } = await ctx.api.request<Link>("GET", path(jid!));
        ctx.print(data, `${data.jid}  ${data.phone}`);
      }),
    );
}
