// Batches toward XMPP. XEP-0114 acknowledges nothing, so a batch is written, then proven by a barrier
// (the sink's round trip through the server): only then are its entries acknowledged. A bounce reported
// by the barrier holds the delivery's conversation for a backoff (bounces.ts); a write that failed, or a
// barrier that failed, leaves the entries pending to be read and written again.
import { deliveryKey, type XmppDelivery } from "../model/message.js";
import { GiveUp, RetryLater } from "../ports.js";
import { createBounceRetries, type BounceRetryOptions } from "./bounces.js";
import { parseEntry, type ProcessorContext } from "./context.js";
import type { BatchProcessor } from "./partition-loop.js";
import type { QueueEntry } from "./queues.js";
import { attemptNumber, conversationToXmpp, createFailureCount, pastDeadline } from "./rules.js";

/**
 * Batches whose barrier is still out when the next batch is read: the next batch does not wait for the
 * round trip through the server (a conversation's stanzas still leave in order, on one connection, and
 * each batch is acknowledged once its own barrier has proven it).
 */
const UNPROVEN_BATCHES = 2;

export function toXmppBatches(ctx: ProcessorContext, partition: number, bounceRetry: BounceRetryOptions): BatchProcessor {
  const failures = createFailureCount(ctx.rules.maxFailures);
  const bounces = createBounceRetries(bounceRetry);
  const sink = ctx.handlers.toXmpp;
  const where = { queue: "to-xmpp", partition };
  /** Batches written and not yet proven by their barrier (oldest first). */
  const unproven: Promise<boolean>[] = [];
  /**
   * Entries written and not yet settled by their barrier. A read of our pending entries returns them
   * too (they stay pending until proven): they are never written a second time while in hand.
   */
  const written = new Set<string>();
  let failed = false;

  const deadLetter = (entry: QueueEntry, reason: string) => ctx.deadLetter("to-xmpp", partition, entry, reason);

  /** The barrier of one batch, then its acknowledgement. False: some of it must be delivered again. */
  async function settle(sent: { entry: QueueEntry; item: XmppDelivery }[]): Promise<boolean> {
    try {
      let bounced: Map<string, string>;
      try {
        bounced = await sink.barrier();
      } catch (err) {
        // Unproven: leave them pending. They go out again with the same stanza ids (the documented
        // window for a same-id repeat).
        ctx.log.warn({ err: (err as Error).message, ...where, count: sent.length }, "XMPP barrier failed; deliveries will be repeated");
        return false;
      }
      const done: string[] = [];
      for (const { entry, item } of sent) {
        const reason = bounced.get(deliveryKey(item));
        failures.forget(entry.id);
        if (reason === undefined) {
          bounces.forget(entry.id);
          done.push(entry.id);
          continue;
        }
        const verdict = bounces.bounced(entry.id, conversationToXmpp(item));
        ctx.log.warn(
          { msgId: item.id, kind: item.kind, reason, bounces: verdict.bounces, ...(verdict.deadLetter ? {} : { retryInMs: verdict.retryAt - Date.now() }) },
          "XMPP server bounced a delivery",
        );
        // Otherwise it stays pending, and its conversation waits (bounces.ts).
        if (verdict.deadLetter) await deadLetter(entry, `bounced by the XMPP server ${verdict.bounces} times: ${reason}`);
      }
      await ctx.queues.ack("to-xmpp", partition, done);
      return true;
    } finally {
      for (const { entry } of sent) written.delete(entry.id);
    }
  }

  async function drain(): Promise<boolean> {
    const results = await Promise.all(unproven.splice(0));
    const ok = !failed && results.every(Boolean);
    failed = false;
    return ok;
  }

  async function process(entries: QueueEntry[], firstTry: boolean): Promise<boolean> {
    const sent: { entry: QueueEntry; item: XmppDelivery }[] = [];
    let ok = true;
    for (const entry of entries) {
      if (!ctx.isRunning()) {
        ok = false;
        break;
      }
      if (written.has(entry.id)) continue; // written, waiting for its barrier
      const item = parseEntry<XmppDelivery>(entry);
      if (!item) {
        await deadLetter(entry, "unreadable entry");
        continue;
      }
      // Waiting after a bounce, with the rest of its conversation: read again when the wait is over.
      if (bounces.isHeld(conversationToXmpp(item))) continue;
      const late = pastDeadline(item, Date.now(), ctx.rules.toXmppDeadlineMs);
      if (late) {
        bounces.forget(entry.id);
        await deadLetter(entry, late);
        continue;
      }
      try {
        await sink.deliver(item, { attempt: attemptNumber(firstTry, failures.count(entry.id), bounces.count(entry.id)), signal: ctx.stopSignal() });
        written.add(entry.id);
        sent.push({ entry, item });
      } catch (err) {
        if (err instanceof RetryLater || ctx.queues.isUnavailable(err)) {
          ok = false;
          break;
        }
        if (err instanceof GiveUp) {
          failures.forget(entry.id);
          await deadLetter(entry, err.message);
          continue;
        }
        ctx.log.error({ err, ...where, entry: entry.id, msgId: item.id }, "delivery toward XMPP failed");
        if (failures.failed(entry.id)) {
          await deadLetter(entry, (err as Error).message);
          continue;
        }
        ok = false;
        break;
      }
    }
    if (sent.length > 0) {
      const settling = settle(sent);
      // Noted when it happens, so that the loop reads its pending entries again even while idle.
      settling.then(
        (good) => void (good || (failed = true)),
        (err: unknown) => {
          failed = true;
          ctx.log.error({ err, ...where }, "acknowledging deliveries failed");
        },
      );
      unproven.push(settling.catch(() => false));
    }
    // Before reading again after a failure, everything handed on must have settled: the pending
    // entries read next are then exactly those still to deliver.
    while (ok && unproven.length > UNPROVEN_BATCHES) ok = await unproven.shift()!;
    if (!ok) await drain();
    return ok;
  }

  return { process, drain, failedMeanwhile: () => failed, releaseDue: (now) => bounces.releaseDue(now), nextRelease: () => bounces.nextRelease() };
}
