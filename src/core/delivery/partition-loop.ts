// One partition of one queue, worked by one loop: read this consumer's own pending entries first (left
// by a crash, a stop, a failure, or held back after a bounce), moving through them batch by batch, then
// new ones. After a failure, back to the start of the pending entries, so the failed one comes first
// again. That one loop per partition is what keeps a conversation's order.
import type { DeliveryQueues, QueueEntry, QueueName } from "./queues.js";
import { nextRetryDelay, type DeliveryRules } from "./rules.js";

/** What a partition's loop hands its batches to. */
export interface BatchProcessor {
  /** Handles a batch; false: something must be tried again (the loop re-reads its pending entries). */
  process(entries: QueueEntry[], firstTry: boolean): Promise<boolean>;
  /** True when work handed on by an earlier batch failed since (checked before each read). */
  failedMeanwhile?(): boolean;
  /** Waits for work still settling; resolves false if any of it failed. */
  drain?(): Promise<boolean>;
  /** Ends the waits that are over (entries held back after a bounce); true when the pending entries must be read again. */
  releaseDue?(now: number): boolean;
  /** When the next such wait ends (a blocking read waits no longer), if any. */
  nextRelease?(): number | undefined;
}

export interface PartitionLoopContext {
  queues: DeliveryQueues;
  consumer: string;
  rules: Pick<DeliveryRules, "retryDelayMs">;
  blockMs: number;
  /** Entries another consumer left idle this long are claimed. */
  claimIdleMs: number;
  /** Entries read at a time. */
  batch: number;
  /** Entries claimed at a time from a dead consumer. */
  claimBatch: number;
  isRunning(): boolean;
  /** Waits, returning early when the engine stops or is woken. */
  delay(ms: number): Promise<void>;
  /** Registers the reader, so that a stop ends its blocking read at once. */
  track(reader: { close(): void }): void;
  log: { warn(o: object, m: string): void; error(o: object, m: string): void };
  /** First claim every entry pending in the partition for any consumer (its last worker stopped). */
  takeOver?: boolean;
}

export async function runPartition(ctx: PartitionLoopContext, queue: QueueName, partition: number, processor: BatchProcessor): Promise<void> {
  try {
    await loop(ctx, queue, partition, processor);
  } finally {
    // Work still settling (toward XMPP: barriers and acknowledgements) finishes before the loop ends.
    await processor.drain?.();
  }
}

async function loop(ctx: PartitionLoopContext, queue: QueueName, partition: number, processor: BatchProcessor): Promise<void> {
  const where = { queue, partition };
  const reader = ctx.queues.reader(queue, partition, ctx.consumer, ctx.blockMs);
  ctx.track(reader);
  let cursor = "0";
  let wait = ctx.rules.retryDelayMs.min;
  let lastClaim = 0;
  if (ctx.takeOver) await takeOver(ctx, queue, partition);
  while (ctx.isRunning()) {
    if (processor.failedMeanwhile?.()) {
      // Something handed on earlier was not proven: read our own pending entries again, after a wait.
      await processor.drain?.();
      cursor = "0";
      await ctx.delay(wait);
      wait = nextRetryDelay(wait, ctx.rules);
      continue;
    }
    // Entries held back after a bounce whose wait is over: read the pending entries again, in order.
    if (processor.releaseDue?.(Date.now())) cursor = "0";
    const release = processor.nextRelease?.();
    const block = release === undefined ? ctx.blockMs : Math.max(1, Math.min(ctx.blockMs, release - Date.now()));
    let entries: QueueEntry[];
    try {
      entries = await reader.read(cursor, ctx.batch, block);
    } catch (err) {
      if (!ctx.isRunning()) return;
      ctx.log.warn({ err: (err as Error).message, ...where }, "queue read failed; retrying");
      // A read whose reply was lost (the store died or the link broke after it ran) left entries pending
      // for us that we never saw: read our own pending list first, instead of waiting to claim them.
      cursor = "0";
      await ctx.delay(1000);
      continue;
    }
    if (entries.length === 0) {
      if (cursor !== ">")
        cursor = ">"; // our pending entries are all read: new ones now
      else if (Date.now() - lastClaim > ctx.claimIdleMs / 2) {
        lastClaim = Date.now();
        if (await claimAbandoned(ctx, queue, partition)) cursor = "0";
      }
      continue;
    }
    let ok: boolean;
    try {
      ok = await processor.process(entries, cursor === ">");
    } catch (err) {
      ctx.log.error({ err, ...where }, "delivery batch failed");
      ok = false;
    }
    if (ok) {
      wait = ctx.rules.retryDelayMs.min;
      // Reading our pending entries: the next read starts after this batch. Reading from "0" again
      // would hand back entries still in hand (toward XMPP, written and waiting for their barrier).
      if (cursor !== ">") cursor = entries[entries.length - 1]!.id;
    } else {
      cursor = "0";
      await ctx.delay(wait);
      wait = nextRetryDelay(wait, ctx.rules);
    }
  }
}

/** Takes over entries a consumer that died left pending for longer than claimIdleMs. */
async function claimAbandoned(ctx: PartitionLoopContext, queue: QueueName, partition: number): Promise<boolean> {
  try {
    const claimed = await ctx.queues.claimIdle(queue, partition, ctx.consumer, ctx.claimIdleMs, ctx.claimBatch);
    if (claimed > 0) ctx.log.warn({ queue, partition, claimed }, "claimed work another consumer left");
    return claimed > 0;
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message, queue, partition }, "claiming abandoned work failed");
    return false;
  }
}

/**
 * Claims what the partition's last worker left pending (it lost or gave back the partition's lease, so it
 * works it no more): read from "0" next, that comes first, in order, before anything new.
 */
async function takeOver(ctx: PartitionLoopContext, queue: QueueName, partition: number): Promise<void> {
  while (ctx.isRunning()) {
    try {
      const claimed = await ctx.queues.takeOver(queue, partition, ctx.consumer);
      if (claimed > 0) ctx.log.warn({ queue, partition, claimed }, "took over work the partition's last worker left");
      return;
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message, queue, partition }, "taking over the partition's pending work failed; retrying");
      await ctx.delay(1000);
    }
  }
}
