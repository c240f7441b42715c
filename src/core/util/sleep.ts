// A wait that a stopping gateway can cut short. The job it belongs to stays queued and resumes on the
// next start, so the interruption is an error (never a silent "done").

export class SendInterrupted extends Error {
  override name = "SendInterrupted";
}

export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new SendInterrupted("stopping"));
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new SendInterrupted("stopping"));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
