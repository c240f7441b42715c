// One measured flow: messages sent one way and counted where they come out, either at a fixed rate
// (open loop: latency at a given load) or as fast as the far end takes them (closed loop with a
// bounded number in flight: the sustained maximum). Every message carries its sequence number and
// its send time, so arrivals give end-to-end latency, losses and duplicates.
import { Latencies } from "./measure.js";

/** How a flow puts one message in; resolves when it was accepted (HTTP answer, with its latency) or written (XMPP). */
export type Sender = (seq: number, text: string) => Promise<{ accepted: boolean; ackMs?: number; error?: string }>;

export type Load = { kind: "rate"; perSecond: number } | { kind: "max"; inFlight: number; concurrency: number };

export interface FlowOptions {
  tag: string;
  load: Load;
  warmupS: number;
  measureS: number;
  /** How long to wait after sending stopped for stragglers before counting losses. */
  drainS: number;
  send: Sender;
  /** Sends at most this many requests at once in the fixed-rate mode (beyond it, the sender counts as overloaded). */
  maxOutstandingRequests?: number;
}

export interface FlowResult {
  tag: string;
  load: string;
  sent: number;
  accepted: number;
  refused: number;
  errors: Record<string, number>;
  delivered: number;
  lost: number;
  duplicates: number;
  /** delivered per second over the measurement window */
  throughput: number;
  /** accepted per second over the measurement window */
  intake: number;
  e2e: { p50: number; p99: number; max: number };
  ack?: { p50: number; p99: number };
  windowS: number;
}

/** The text a flow's message carries: tag, sequence number, send time (ms, performance clock). */
export function stamp(tag: string, seq: number): string {
  return `${tag} ${seq} ${performance.now().toFixed(3)}`;
}

export class Flow {
  private readonly seen: Uint8Array;
  private sent = 0;
  private accepted = 0;
  private refused = 0;
  private delivered = 0;
  private duplicates = 0;
  private readonly errors: Record<string, number> = {};
  private readonly e2e = new Latencies();
  private readonly ack = new Latencies();
  private measuring = false;
  private windowDelivered = 0;
  private windowAccepted = 0;
  private arrivalWaiters: (() => void)[] = [];

  constructor(
    private readonly o: FlowOptions,
    capacity = 4_000_000,
  ) {
    this.seen = new Uint8Array(capacity);
  }

  /** Feed every arriving text here; texts of other flows are ignored. */
  arrived(text: string): void {
    const [tag, seqS, tS] = text.split(" ");
    if (tag !== this.o.tag) return;
    const seq = Number(seqS);
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.seen.length) return;
    if (this.seen[seq]) {
      this.duplicates++;
      return;
    }
    this.seen[seq] = 1;
    this.delivered++;
    if (this.measuring) this.windowDelivered++;
    this.e2e.add(performance.now() - Number(tS));
    const w = this.arrivalWaiters;
    if (w.length > 0) {
      this.arrivalWaiters = [];
      for (const f of w) f();
    }
  }

  private nextArrival(): Promise<void> {
    return new Promise((r) => this.arrivalWaiters.push(r));
  }

  private async sendOne(): Promise<void> {
    const seq = this.sent++;
    let r: Awaited<ReturnType<Sender>>;
    try {
      r = await this.o.send(seq, stamp(this.o.tag, seq));
    } catch (err) {
      r = { accepted: false, error: (err as Error).message.slice(0, 80) };
    }
    if (r.accepted) {
      this.accepted++;
      if (this.measuring) this.windowAccepted++;
      if (r.ackMs !== undefined) this.ack.add(r.ackMs);
    } else {
      this.refused++;
      const key = r.error ?? "refused";
      this.errors[key] = (this.errors[key] ?? 0) + 1;
    }
  }

  async run(): Promise<FlowResult> {
    const { load } = this.o;
    const started = performance.now();
    const measureFrom = started + this.o.warmupS * 1000;
    const end = measureFrom + this.o.measureS * 1000;
    const marker = setTimeout(() => (this.measuring = true), this.o.warmupS * 1000);
    let windowEnd = end;
    const stopMeasuring = setTimeout(() => {
      this.measuring = false;
      windowEnd = performance.now();
    }, end - started);

    if (load.kind === "rate") {
      const cap = this.o.maxOutstandingRequests ?? 2000;
      let outstanding = 0;
      const pending = new Set<Promise<void>>();
      await new Promise<void>((resolve) => {
        const tick = setInterval(() => {
          const now = performance.now();
          if (now >= end) {
            clearInterval(tick);
            resolve();
            return;
          }
          const due = Math.floor(((now - started) / 1000) * load.perSecond) - this.sent;
          for (let i = 0; i < due; i++) {
            if (outstanding >= cap) {
              this.sent++;
              this.refused++;
              this.errors["bench overloaded (not sent)"] = (this.errors["bench overloaded (not sent)"] ?? 0) + 1;
              continue;
            }
            outstanding++;
            const p = this.sendOne().finally(() => {
              outstanding--;
              pending.delete(p);
            });
            pending.add(p);
          }
        }, 1);
      });
      await Promise.allSettled([...pending]);
    } else {
      const worker = async () => {
        let n = 0;
        while (performance.now() < end) {
          // a sender that answers at once (a socket write) must still let arrivals in
          if (++n % 64 === 0) await new Promise((r) => setImmediate(r));
          if (this.accepted - this.delivered >= load.inFlight) {
            await Promise.race([this.nextArrival(), new Promise((r) => setTimeout(r, 50))]);
            continue;
          }
          await this.sendOne();
        }
      };
      await Promise.all(Array.from({ length: load.concurrency }, worker));
    }
    clearTimeout(marker);
    clearTimeout(stopMeasuring);
    this.measuring = false;
    const windowS = (Math.min(windowEnd, performance.now()) - measureFrom) / 1000;

    // Stragglers get as long as they keep arriving (a flow that fell behind drains its backlog); what
    // has not arrived once nothing came for drainS seconds (or after 5 minutes) is lost.
    const drainCap = performance.now() + 300_000;
    let lastProgress = performance.now();
    let seen = this.delivered;
    while (this.delivered < this.accepted && performance.now() - lastProgress < this.o.drainS * 1000 && performance.now() < drainCap) {
      await new Promise((r) => setTimeout(r, 50));
      if (this.delivered !== seen) [seen, lastProgress] = [this.delivered, performance.now()];
    }

    const [p50, p99, max] = this.e2e.percentiles(50, 99, 100);
    const [a50, a99] = this.ack.percentiles(50, 99);
    return {
      tag: this.o.tag,
      load: load.kind === "rate" ? `${load.perSecond}/s` : "max",
      sent: this.sent,
      accepted: this.accepted,
      refused: this.refused,
      errors: this.errors,
      delivered: this.delivered,
      lost: Math.max(0, this.accepted - this.delivered),
      duplicates: this.duplicates,
      throughput: this.windowDelivered / windowS,
      intake: this.windowAccepted / windowS,
      e2e: { p50: p50!, p99: p99!, max: max! },
      ...(this.ack.count > 0 ? { ack: { p50: a50!, p99: a99! } } : {}),
      windowS,
    };
  }
}
