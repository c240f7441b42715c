// Which live instance works which partition: rendezvous (highest random weight) hashing. Every instance
// computes the same answer from the same list of live instances, and when one joins or leaves only the
// partitions it gains or loses move (a conversation's partition never changes, so its order is kept by
// whoever works the partition).
import { createHash } from "node:crypto";

function weight(instance: string, partition: number): number {
  return createHash("sha1").update(`${instance}\u0000${partition}`).digest().readUInt32BE(0);
}

/** The live instance that should work `partition`; undefined when none is live. */
export function ownerOf(partition: number, live: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const instance of live) {
    const w = weight(instance, partition);
    // Ties (vanishingly rare) go to the smaller name, so that every instance agrees.
    if (w > bestWeight || (w === bestWeight && best !== undefined && instance < best)) {
      best = instance;
      bestWeight = w;
    }
  }
  return best;
}

/** The partitions of `count` that `instance` should work while `live` are the live instances. */
export function partitionsOf(instance: string, count: number, live: readonly string[]): number[] {
  const mine: number[] = [];
  for (let p = 0; p < count; p++) if (ownerOf(p, live) === instance) mine.push(p);
  return mine;
}
