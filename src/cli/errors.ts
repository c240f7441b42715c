// Exit codes and the one error type commands end with.

/** 0 ok, 1 a failed check or request, 2 a usage error. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Ends the command with `message` on stderr (and `json` on stdout with --json) and the exit code. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
    readonly json?: unknown,
  ) {
    super(message);
  }
}
