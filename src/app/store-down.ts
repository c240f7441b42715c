// Redis away is something to wait out (a restart takes seconds), not an internal error: what a user or
// an API caller is told when it is.
import { isRedisUnavailable } from "../adapters/redis/client.js";
import type { Outbound } from "../core/flows/xmpp-out.js";
import { GatewayError } from "../errors.js";

/** A failure because Redis is unreachable, as resource-constraint with Retry-After; undefined for any other error. */
export function storeDown(err: unknown, userText: string): GatewayError | undefined {
  return isRedisUnavailable(err) ? new GatewayError("resource_constraint", userText, { cause: err, retryAfterMs: 30_000 }) : undefined;
}

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
        throw storeDown(err, "The gateway cannot store messages right now (its database is unavailable), so this one was not sent. Try again in a minute.") ?? err;
      }
    },
  };
}
