// Inbound SMS when Redis is away (issue 3, "Redis trouble"). Twilio never redelivers an inbound
// webhook, so when Redis cannot take an SMS in time it goes to a local journal (on disk before the 200)
// and is replayed through the normal accept path once Redis is back. Replay is idempotent by MessageSid
// (the delivery engine's dedupe marker), so "replay, then delete the journal file" is crash-safe: a crash in
// between replays again and stores nothing twice.
import { GatewayError } from "../../errors.js";
import type { Inbound, InboundOutcome, InboundSms } from "./sms-in.js";
import { inboundMessageId } from "../model/message.js";

/** What the journal keeps of an inbound SMS. */
export interface SpooledSms extends InboundSms {
  v: 1;
  receivedAt: number;
}

/** The journal as the spool needs it (src/adapters/journal implements it). */
export interface SpoolJournal {
  append(record: SpooledSms): Promise<void>;
  pending(): number;
  rotate(): Promise<string[]>;
  read(file: string): AsyncIterable<SpooledSms>;
  remove(file: string): Promise<void>;
  setAside(record: SpooledSms, reason: string): Promise<void>;
  status(): Promise<{ writable: boolean; pending: number; error?: string }>;
}

export interface SpoolDeps {
  inbound: Inbound;
  journal: SpoolJournal;
  /** True for errors that mean "the store is unreachable now" (spool, retry later), not a bug. */
  isStoreDown(err: unknown): boolean;
  /** An accept that has not finished by then counts as "store down" (REDIS_COMMAND_TIMEOUT_MS). */
  deadlineMs: number;
  replayIntervalMs: number;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
}

/** The store did not answer within the deadline. */
export class StoreDeadlineExceeded extends Error {
  override name = "StoreDeadlineExceeded";
}

/** Validates a journal line (the journal stores JSON; anything else is skipped). */
export function parseSpooledSms(v: unknown): SpooledSms | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const str = (x: unknown): x is string => typeof x === "string";
  if (r.v !== 1 || !str(r.providerId) || !str(r.from) || !str(r.to) || !str(r.body)) return undefined;
  if (typeof r.receivedAt !== "number" || !Number.isFinite(r.receivedAt) || !Array.isArray(r.media)) return undefined;
  const media: { url: string; contentType?: string }[] = [];
  for (const m of r.media as unknown[]) {
    const mm = m as Record<string, unknown> | null;
    if (!mm || !str(mm.url)) return undefined;
    media.push({ url: mm.url, ...(str(mm.contentType) ? { contentType: mm.contentType } : {}) });
  }
  return {
    v: 1,
    providerId: r.providerId,
    ...(str(r.account) ? { account: r.account } : {}),
    from: r.from,
    to: r.to,
    body: r.body,
    media,
    receivedAt: r.receivedAt,
    ...(str(r.optOutType) ? { optOutType: r.optOutType } : {}),
  };
}

export function createSpool(deps: SpoolDeps) {
  const { journal, log } = deps;
  let replaying: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  /** `p`, or StoreDeadlineExceeded after deadlineMs (p keeps running; its outcome is idempotent). */
  function withDeadline<R>(p: Promise<R>): Promise<R> {
    let t: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new StoreDeadlineExceeded(`no answer from the store within ${deps.deadlineMs} ms`)), deps.deadlineMs);
    });
    p.catch(() => undefined); // a late failure after the deadline is nobody's to handle
    return Promise.race([p, late]).finally(() => clearTimeout(t));
  }

  const storeDown = (err: unknown): boolean => err instanceof StoreDeadlineExceeded || deps.isStoreDown(err);

  async function spool(sms: SpooledSms): Promise<InboundOutcome> {
    await journal.append(sms);
    log.warn({ msgId: inboundMessageId(sms.providerId), pending: journal.pending() }, "Redis unavailable: inbound SMS kept in the journal");
    void replay();
    return { outcome: "journaled", id: inboundMessageId(sms.providerId) };
  }

  /** Stores the SMS in Redis, or on disk when Redis cannot take it in time. Throws only when neither can. */
  async function accept(sms: InboundSms): Promise<InboundOutcome> {
    const record: SpooledSms = { ...sms, v: 1, receivedAt: sms.receivedAt ?? Date.now() };
    const id = inboundMessageId(sms.providerId);
    // While older SMS still wait in the journal, newer ones queue behind them: a conversation keeps its order.
    if (journal.pending() > 0) {
      try {
        return await spool(record);
      } catch (err) {
        log.error({ msgId: id, err: (err as Error).message }, "journal append failed; trying Redis directly");
      }
    }
    try {
      return await withDeadline(deps.inbound.accept(record));
    } catch (err) {
      if (!storeDown(err)) throw err;
      log.warn({ msgId: id, err: (err as Error).message }, "Redis did not take the inbound SMS");
    }
    try {
      return await spool(record);
    } catch (err) {
      log.error({ msgId: id, err: (err as Error).message }, "neither Redis nor the journal could store the inbound SMS");
      throw new GatewayError("unavailable", "The gateway cannot store messages right now; retry later.", { cause: err });
    }
  }

  /** Status callbacks are not journaled: when Redis is away they answer 503 (Twilio retries per #rc/#rp). */
  function notJournaled<A, R>(apply: (a: A) => Promise<R>): (a: A) => Promise<R> {
    return async (a) => {
      try {
        return await withDeadline(apply(a));
      } catch (err) {
        if (!storeDown(err)) throw err;
        throw new GatewayError("unavailable", "The gateway cannot store status updates right now; retry later.", { cause: err });
      }
    };
  }
  const applyStatus = notJournaled(deps.inbound.applyStatus);
  const applyCallback = notJournaled(deps.inbound.applyCallback);

  /** One pass over every journal file. false: the store went away again (the rest waits for the next pass). */
  async function replayPass(): Promise<boolean> {
    for (const file of await journal.rotate()) {
      let replayed = 0;
      for await (const sms of journal.read(file)) {
        if (stopped) return false;
        const id = inboundMessageId(sms.providerId);
        try {
          const res = await withDeadline(deps.inbound.accept(sms));
          replayed++;
          log.info({ msgId: id, outcome: res.outcome, waitedMs: Date.now() - sms.receivedAt }, "journaled SMS replayed");
        } catch (err) {
          if (storeDown(err)) {
            log.warn({ msgId: id, err: (err as Error).message }, "journal replay paused: Redis unavailable");
            return false;
          }
          // Retrying cannot help and must not hold back everything behind it.
          log.error({ msgId: id, err: (err as Error).message }, "journaled SMS could not be replayed; set aside");
          await journal.setAside(sms, (err as Error).message);
        }
      }
      // Only now is every record of the file in Redis (or set aside): the file may go.
      await journal.remove(file);
      log.info({ file, replayed }, "journal file replayed and removed");
    }
    return true;
  }

  /** Replays the journal into Redis; concurrent calls share one run. */
  function replay(): Promise<void> {
    replaying ??= (async () => {
      try {
        while (!stopped && journal.pending() > 0) {
          if (!(await replayPass())) return;
        }
      } catch (err) {
        log.error({ err: (err as Error).message }, "journal replay failed; will retry");
      }
    })().finally(() => {
      replaying = undefined;
    });
    return replaying;
  }

  return {
    accept,
    applyStatus,
    applyCallback,
    replay,
    /** Replays now (start-up: a crash may have left a journal) and then every replayIntervalMs while anything waits. */
    start(): void {
      stopped = false;
      void replay();
      timer = setInterval(() => {
        if (journal.pending() > 0) void replay();
      }, deps.replayIntervalMs);
      timer.unref();
    },
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await replaying;
    },
    journalStatus: () => journal.status(),
  };
}

export type Spool = ReturnType<typeof createSpool>;
