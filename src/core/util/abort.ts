// A signal that follows others until released. AbortSignal.any would do, but on Node 20 (and later
// versions until mid-2026) a combined signal that anything listens to stays registered with a
// long-lived source forever (nodejs/node#55351, #64476): one per job combined with the gateway's stop
// signal is a leak that grows with every message. Here the listeners are removed when the work ends.

export interface FollowedSignal {
  signal: AbortSignal;
  /** Stops following: the sources keep nothing of it. Call when the work it guarded ends. */
  release(): void;
}

/** Aborted as soon as one of `sources` is (or already is); `timeoutMs` adds a deadline of its own. */
export function follow(sources: readonly (AbortSignal | undefined)[], timeoutMs?: number): FollowedSignal {
  const controller = new AbortController();
  const listening: { source: AbortSignal; onAbort: () => void }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const release = (): void => {
    clearTimeout(timer);
    for (const { source, onAbort } of listening.splice(0)) source.removeEventListener("abort", onAbort);
  };
  const abort = (reason?: unknown): void => {
    release();
    controller.abort(reason);
  };
  for (const source of sources) {
    if (!source) continue;
    if (source.aborted) {
      abort(source.reason);
      break;
    }
    const onAbort = (): void => abort(source.reason);
    source.addEventListener("abort", onAbort, { once: true });
    listening.push({ source, onAbort });
  }
  if (timeoutMs !== undefined && !controller.signal.aborted) {
    timer = setTimeout(() => abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")), timeoutMs);
  }
  return { signal: controller.signal, release };
}

/** Whether `signal` was aborted by the deadline `follow` gave it. */
export function timedOut(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof DOMException && signal.reason.name === "TimeoutError";
}
