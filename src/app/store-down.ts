// Redis away is something to wait out (a restart takes seconds), not an internal error: what a user or
// an API caller is told when it is. Replicas that could not confirm a write (REDIS_MIN_REPLICAS) count as
// Redis away, with words of their own: the write may have been made.
import { isRedisUnavailable } from "../adapters/redis/client.js";
import { ReplicasBehindError } from "../adapters/redis/replicas.js";
import type { Outbound } from "../core/flows/xmpp-out.js";
import { GatewayError } from "../errors.js";

/**
 * A failure because Redis is unreachable, as resource-constraint with Retry-After; undefined for any other
 * error. `replicaText`: what to say when the replicas could not confirm the write (`written`: it was made
 * on the primary before that was known).
 */
export function storeDown(err: unknown, userText: string, replicaText?: (written: boolean) => string): GatewayError | undefined {
  if (!isRedisUnavailable(err)) return undefined;
  const text = err instanceof ReplicasBehindError && replicaText ? replicaText(err.written) : userText;
  return new GatewayError("resource_constraint", text, { cause: err, retryAfterMs: 30_000 });
}

/** For the HTTP API: an Idempotency-Key makes the retry safe whether or not the first write was made. */
export const REPLICAS_HTTP_TEXT = () =>
  "The gateway's database could not confirm the write on a replica (REDIS_MIN_REPLICAS), so it was not accepted. Retry later with the same Idempotency-Key: a message is never delivered twice under one key.";

/**
 * A message that cannot be stored because Redis is away is refused with "try again" (resource-constraint,
 * type wait) instead of "internal error": nothing is wrong with it, and nothing was sent.
 */
export function explainStoreDown(outbound: Outbound): Outbound {
  return {
    ...outbound,
    async accept(msg) {
      try {
        return await outbound.accept(msg);
      } catch (err) {
        throw (
          storeDown(err, "The gateway cannot store messages right now (its database is unavailable), so this one was not sent. Try again in a minute.", (written) =>
            written
              ? "The gateway stored this message but could not confirm it on a replica of its database, so it is not counted as accepted: it will probably still be sent, but could be lost if the database fails over now. Sending it again may deliver it twice."
              : "The gateway cannot store messages safely right now (its database has no replica in sync), so this one was not sent. Try again in a minute.",
          ) ?? err
        );
      }
    },
  };
}
