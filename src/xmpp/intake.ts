// Back-pressure on what the XMPP server sends us. Each message from a user costs Redis round trips;
// a server that sends faster than they complete would otherwise pile up handlers (and memory) without
// bound. Past `high` handlers in progress the socket stops being read, so TCP slows the server down;
// below `low` reading resumes. Nothing is refused: the server holds what it has not sent yet.

interface PausableSocket {
  pause(): unknown;
  resume(): unknown;
}

export interface IntakeGate {
  /** Counts `work` as in progress until it settles; returns it. */
  track<T>(work: Promise<T>): Promise<T>;
  /** Handlers in progress, and whether reading is paused (metrics, tests). */
  state(): { inProgress: number; paused: boolean; pauses: number };
  /** Resolves once no handler is in progress (a stop lets what the server already handed over finish). */
  idle(): Promise<void>;
}

export function createIntakeGate(socketOf: () => PausableSocket | null | undefined, opts: { high: number; low: number }): IntakeGate {
  let inProgress = 0;
  let paused: PausableSocket | undefined;
  let pauses = 0;

  let idleWaiters: (() => void)[] = [];
  const settle = () => {
    inProgress--;
    if (inProgress === 0) {
      for (const w of idleWaiters) w();
      idleWaiters = [];
    }
    if (paused && inProgress <= opts.low) {
      // the socket may have been replaced meanwhile (reconnect): resuming the old one is harmless
      paused.resume();
      paused = undefined;
    }
  };

  return {
    track(work) {
      inProgress++;
      if (!paused && inProgress >= opts.high) {
        const socket = socketOf();
        if (socket) {
          socket.pause();
          paused = socket;
          pauses++;
        }
      }
      work.then(settle, settle);
      return work;
    },
    state: () => ({ inProgress, paused: paused !== undefined, pauses }),
    idle: () => (inProgress === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
  };
}
