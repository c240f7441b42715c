// Batches toward the provider and webhook receivers. Only a conversation's order matters: its jobs go
// one after the other, while the batch's other conversations go at the same time (one provider round
// trip each would otherwise bound a partition to one message per round trip). A job that must wait
// stops its own conversation only; the batch is then read again after a backoff.
import type { OutboundJob } from "../model/message.js";
import { GiveUp, RetryLater, type DeliveryMeta } from "../ports.js";
import { follow } from "../util/abort.js";
import { coalesced, parseEntry, type ProcessorContext } from "./context.js";
import type { BatchProcessor } from "./partition-loop.js";
import type { QueueEntry } from "./queues.js";
import { attemptNumber, conversationOutbound, createFailureCount } from "./rules.js";

export function outboundBatches(ctx: ProcessorContext, partition: number): BatchProcessor {
  const failures = createFailureCount(ctx.rules.maxFailures);
  const where = { queue: "outbound", partition };
  const ackSoon = coalesced((ids: string[]) => ctx.queues.ack("outbound", partition, ids));
  // Which entries are still pending (ours): claiming them again says so without taking anything.
  const stillPending = (ids: string[]) => ctx.queues.stillPending("outbound", partition, ctx.consumer, ids);
  const claimSoon = coalesced(stillPending);
  const deadLetter = (entry: QueueEntry, reason: string) => ctx.deadLetter("outbound", partition, entry, reason);

  /**
   * One job; false stops its conversation (and fails the batch, which is read again after a backoff).
   * `claimed`: what the batch's claim said of it just now; undefined when it has to be claimed here.
   */
  async function handleOne(entry: QueueEntry, job: OutboundJob | undefined, firstTry: boolean, claimed: boolean | undefined): Promise<boolean> {
    if (!ctx.isRunning()) return false;
    if (!job) {
      await deadLetter(entry, "unreadable entry");
      return true;
    }
    // Read in a batch, it may have left its queue since (dead-lettered by deadLetterWhere): claiming it
    // again (it is ours) says whether it is still pending.
    if (!(claimed ?? (await claimSoon(entry.id)).has(entry.id))) {
      failures.forget(entry.id);
      ctx.log.info({ ...where, entry: entry.id, msgId: job.id }, "job left its queue before it was handled; skipped");
      return true;
    }
    // Aborted when the entry leaves its queue while in hand (dead-lettered by deadLetterWhere, here or
    // on another instance): the handler's waits end and the job is not tried again.
    const gone = new AbortController();
    const handKey = `${partition} ${entry.id}`;
    ctx.inHand.set(handKey, gone);
    // The handler's signal: the entry gone, or the engine stopping (released when the job ends).
    const handling = follow([ctx.stopSignal(), gone.signal]);
    const meta: DeliveryMeta = { attempt: attemptNumber(firstTry, failures.count(entry.id)), signal: handling.signal };
    // A long provider backoff must not look abandoned to other consumers. Claiming nothing means the
    // entry is no longer pending: it left its queue.
    const heartbeat = setInterval(
      () => {
        stillPending([entry.id]).then(
          (ids) => void (ids.size === 0 && gone.abort()),
          () => undefined,
        );
      },
      Math.max(1000, ctx.claimIdleMs / 3),
    );
    try {
      await ctx.handlers.outbound(job, meta);
    } catch (err) {
      if (!ctx.isRunning()) return false; // stopped mid-way: stays pending for the next start
      if (gone.signal.aborted) {
        failures.forget(entry.id);
        ctx.log.info({ ...where, entry: entry.id, msgId: job.id }, "job left its queue while in hand (dead-lettered); not tried again");
        return true;
      }
      // The next hop or the store is away, which is no fault of the job: try again later.
      if (err instanceof RetryLater || ctx.queues.isUnavailable(err)) return false;
      if (err instanceof GiveUp) {
        failures.forget(entry.id);
        await deadLetter(entry, err.message);
        return true;
      }
      ctx.log.error({ err, ...where, entry: entry.id, msgId: job.id }, "outbound job failed");
      if (!failures.failed(entry.id)) return false;
      await deadLetter(entry, (err as Error).message);
      return true;
    } finally {
      clearInterval(heartbeat);
      ctx.inHand.delete(handKey);
      handling.release();
    }
    failures.forget(entry.id);
    await ackSoon(entry.id);
    return true;
  }

  const process = async (entries: QueueEntry[], firstTry: boolean): Promise<boolean> => {
    const conversations = new Map<string, { entry: QueueEntry; job: OutboundJob | undefined }[]>();
    for (const entry of entries) {
      const job = parseEntry<OutboundJob>(entry);
      const key = job ? conversationOutbound(job) : entry.id;
      const list = conversations.get(key);
      if (list) list.push({ entry, job });
      else conversations.set(key, [{ entry, job }]);
    }
    // The first job of each conversation starts now: one claim for all of them says which are still
    // pending. A job that waits behind another of its conversation is claimed when its turn comes.
    const firsts = [...conversations.values()].map((list) => list[0]!.entry.id);
    const pending = await stillPending(firsts);
    const outcomes = await Promise.all(
      [...conversations.values()].map(async (list) => {
        for (const [i, { entry, job }] of list.entries()) {
          if (!(await handleOne(entry, job, firstTry, i === 0 ? pending.has(entry.id) : undefined))) return false;
        }
        return true;
      }),
    );
    return outcomes.every(Boolean);
  };
  return { process };
}
