// switchboard dead-letters list|retry — messages the gateway gave up on (/api/v1/dead-letters).
import type { Command } from "commander";
import { table } from "./context.js";
import { CliError, EXIT } from "./errors.js";
import type { Action } from "./program.js";

interface DeadLetter {
  id: string;
  queue: string;
  reason: string;
  at: string;
  messageId: string;
  kind: string;
  from: string;
  to: string;
}

export function deadLettersCommand(program: Command, action: Action): void {
  const dl = program.command("dead-letters").description("messages the gateway gave up on, and putting them back");

  dl.command("list")
    .description("list dead letters, newest first (bodies are not shown)")
    .option("--limit <n>", "at most this many (1-1000)", "100")
    .action(
      action(async (ctx, _args, opts: { limit: string }) => {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError("--limit must be a whole number from 1 to 1000", EXIT.usage);
        const { data } = await ctx.api.request<{ deadLetters: DeadLetter[] }>("GET", `/api/v1/dead-letters?limit=${limit}`);
        ctx.print(
          data,
          data.deadLetters.length === 0
            ? "no dead letters"
            : table(
                ["ID", "QUEUE", "AT", "FROM", "TO", "REASON"],
                data.deadLetters.map((d) => [d.id, d.queue, d.at, d.from, d.to, d.reason]),
              ),
        );
      }),
    );

  dl.command("retry")
    .description("put a dead letter back in its queue")
    .argument("<id>", "dead-letter id from the list, e.g. 1795668000000-0")
    .action(
      action(async (ctx, [id]) => {
        const { data } = await ctx.api.request<{ id: string; status: string }>("POST", `/api/v1/dead-letters/${encodeURIComponent(id!)}/retry`);
        ctx.print(data, `dead letter ${data.id} queued again`);
      }),
    );
}
