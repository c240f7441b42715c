// The command tree (commander): global options, one module per command group, exit codes.
import { Command, CommanderError } from "commander";
import { Context, type CliIo, type GlobalOptions } from "./context.js";
import { deadLettersCommand } from "./dead-letters.js";
import { doctorCommand } from "./doctor/index.js";
import { CliError, EXIT } from "./errors.js";
import { reconcileCommand } from "./reconcile.js";
import { sendCommand } from "./send.js";
import { usersCommand } from "./users.js";
import { webhooksCommand } from "./webhooks.js";
import { VERSION } from "../version.js";

/** A command's body: the context, its positional arguments (variadic ones flattened), its own options. Returns the exit code (default 0). */
export type Action = <O>(fn: (ctx: Context, args: string[], opts: O, cmd: Command) => Promise<number | void>) => (...commanderArgs: unknown[]) => Promise<void>;

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command("switchboard");
  // Inherited by every subcommand created below: our output, no process.exit, global options in each help.
  program.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr }).configureHelp({ showGlobalOptions: true, sortSubcommands: false }).showHelpAfterError("(add --help for usage)");
  program
    .description("Admin CLI for a Switchboard gateway (XMPP ⇄ SMS and webhooks). Talks to its admin API; doctor also checks the local configuration.")
    .version(VERSION, "-V, --version")
    .option("--url <url>", "the gateway's HTTP address (default: SWITCHBOARD_URL, else http://HTTP_HOST:HTTP_PORT from the gateway's configuration, else http://127.0.0.1:8080)")
    .option("--json", "print JSON instead of text")
    .option("--env-file <path>", "read variables from this file (default: ./.env when present); the environment wins")
    .addHelpText(
      "after",
      `
The admin token comes from SWITCHBOARD_ADMIN_TOKEN (or ADMIN_TOKEN, the gateway's own variable), never
from the command line. Exit codes: 0 ok, 1 a failed check or request, 2 a usage error.

Examples:
  switchboard users link alice@example.com +15550001111
  switchboard send alice@example.com +15552223333 "Hello"
  switchboard reconcile --since 6h
  switchboard doctor --fix`,
    );

  const action: Action =
    (fn) =>
    async (...commanderArgs: unknown[]) => {
      const cmd = commanderArgs[commanderArgs.length - 1] as Command;
      const ctx = new Context(io, cmd.optsWithGlobals<GlobalOptions>());
      const code = await fn(ctx, cmd.args, cmd.opts() as Parameters<typeof fn>[2], cmd);
      exitCode = code ?? EXIT.ok;
    };

  usersCommand(program, action);
  webhooksCommand(program, action);
  deadLettersCommand(program, action);
  sendCommand(program, action);
  reconcileCommand(program, action);
  doctorCommand(program, action);

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help, --version: done. Everything else commander raises is a usage error (its message is printed already).
      // (`switchboard help users` is commander.help with exit code 0; `switchboard users` alone, with 1.)
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || (e.code === "commander.help" && e.exitCode === 0)) return EXIT.ok;
      return EXIT.usage;
    }
    if (e instanceof CliError) {
      if (e.json !== undefined && argv.includes("--json")) io.stdout(JSON.stringify(e.json, null, 2) + "\n");
      io.stderr(`switchboard: ${e.message}\n`);
      return e.exitCode;
    }
    io.stderr(`switchboard: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.failed;
  }
  return exitCode;
}
