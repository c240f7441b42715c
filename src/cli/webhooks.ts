// switchboard webhooks add|remove|list|show|rotate-token — webhook targets (/api/v1/webhooks/{name}).
import type { Command } from "commander";
import { table } from "./context.js";
import type { Action } from "./program.js";

interface Target {
  name: string;
  url: string;
  allow: string[];
  createdAt?: string;
  updatedAt?: string;
  token?: string;
  secret?: string;
}

const path = (name: string) => `/api/v1/webhooks/${encodeURIComponent(name)}`;

export function webhooksCommand(program: Command, action: Action): void {
  const webhooks = program.command("webhooks").description("webhook targets: bots and services users talk to as name@your-component-domain");

  webhooks
    .command("add")
    .description("create a webhook target, or update its URL and allow list (its token and secret stay)")
    .argument("<name>", "the target's name: its JID is <name>@XMPP_DOMAIN")
    .argument("<url>", "http(s) URL messages from users are posted to")
    .requiredOption("--allow <jid...>", "bare JIDs (or *@domain) allowed to talk to it; repeat or list several")
    .option("--secret <secret>", "signing secret (16+ characters); generated when left out. Prefer the generated one: a command line can be seen by other users of the machine")
    .addHelpText(
      "after",
      "\nExample:\n  switchboard webhooks add deploybot https://bot.example.com/hook --allow alice@example.com '*@example.com'\n\nThe token (messages in) and a generated secret (signatures) are shown once, when the target is created.",
    )
    .action(
      action(async (ctx, [name, url], opts: { allow: string[]; secret?: string }) => {
        const res = await ctx.api.request<Target>("PUT", path(name!), { url, allow: opts.allow, ...(opts.secret ? { secret: opts.secret } : {}) });
        const t = res.data;
        const created = res.status === 201;
        const lines = [`${created ? "created" : "updated"} webhook ${t.name} -> ${t.url}`, `  allow:  ${t.allow.join(", ")}`];
        if (t.token) lines.push(`  token:  ${t.token}   (shown once: the target posts messages in with it)`);
        if (t.secret) lines.push(`  secret: ${t.secret}   (shown once: deliveries are signed with it)`);
        if (!created) lines.push("  (token and secret unchanged; rotate the token with: switchboard webhooks rotate-token " + t.name + ")");
        ctx.print({ ...t, created }, lines);
      }),
    );

  webhooks
    .command("remove")
    .description("delete a webhook target")
    .argument("<name>")
    .action(
      action(async (ctx, [name]) => {
        await ctx.api.request("DELETE", path(name!));
        ctx.print({ name, removed: true }, `removed webhook ${name}`);
      }),
    );

  webhooks
    .command("list")
    .description("list webhook targets (never their tokens or secrets)")
    .action(
      action(async (ctx) => {
        const { data } = await ctx.api.request<{ webhooks: Target[] }>("GET", "/api/v1/webhooks");
        ctx.print(
          data,
          data.webhooks.length === 0
            ? "no webhook targets"
            : table(
                ["NAME", "URL", "ALLOW"],
                data.webhooks.map((w) => [w.name, w.url, w.allow.join(",")]),
              ),
        );
      }),
    );

  webhooks
    .command("show")
    .description("show one webhook target")
    .argument("<name>")
    .action(
      action(async (ctx, [name]) => {
        const { data } = await ctx.api.request<Target>("GET", path(name!));
        ctx.print(data, [`${data.name} -> ${data.url}`, `  allow:   ${data.allow.join(", ")}`, `  created: ${data.createdAt ?? "?"}`, `  updated: ${data.updatedAt ?? "?"}`]);
      }),
    );

  webhooks
    .command("rotate-token")
    .description("issue a new inbound token; the old one stops working at once")
    .argument("<name>")
    .action(
      action(async (ctx, [name]) => {
        const { data } = await ctx.api.request<{ name: string; token: string }>("POST", `${path(name!)}/token`);
        ctx.print(data, [`new token for ${data.name}: ${data.token}`, "(shown once; the previous token no longer works)"]);
      }),
    );
}
