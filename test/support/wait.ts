// Waiting in tests: poll for a value or a condition until it comes, and fail naming what was awaited.
import { setTimeout as sleep } from "node:timers/promises";

export interface WaitOptions {
  /** What is awaited, for the error. A function is called only on failure (to add what was seen instead). */
  what: string | (() => string);
  timeoutMs: number;
  /** Pause between two polls (default 50 ms). */
  intervalMs?: number;
  /** Asked before each poll: a reason to stop waiting at once (a process that died, say). */
  abortIf?: () => string | undefined;
}

const described = (what: WaitOptions["what"]): string => (typeof what === "function" ? what() : what);

/** Polls `probe` until it returns something other than undefined, and returns that; throws naming `what` after `timeoutMs`. */
export async function until<T>(probe: () => T | undefined | Promise<T | undefined>, opts: WaitOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const abort = opts.abortIf?.();
    if (abort !== undefined) throw new Error(`${described(opts.what)}: ${abort}`);
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${described(opts.what)}: not ready after ${opts.timeoutMs} ms`);
    await sleep(opts.intervalMs ?? 50);
  }
}

/** Polls `check` until it is true; throws naming `what` after `timeoutMs`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, opts: WaitOptions): Promise<void> {
  await until(async () => ((await check()) ? true : undefined), opts);
}
