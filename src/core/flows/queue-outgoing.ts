// An outgoing message is recorded, then queued: both calls leave at once (one round trip to the store
// instead of two). They reach the store in the order made, and the delivery engine refuses a job whose record
// is missing, so a failed create never leaves a job behind.
import type { MessageRecord, OutboundJob } from "../model/message.js";
import type { MessageStore, Delivery } from "../ports.js";

/** False when `repeatKey` was taken already (a repeat: nothing queued). */
export async function recordAndQueue(deps: { messages: MessageStore; delivery: Delivery }, record: MessageRecord, job: OutboundJob, repeatKey?: string): Promise<boolean> {
  const [, queued] = await Promise.all([deps.messages.create(record), deps.delivery.enqueueOutbound(job, repeatKey)]);
  return queued;
}
