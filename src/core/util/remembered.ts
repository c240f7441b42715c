// Remembering the answers of a pure function of a short string. Phone-number parsing with
// libphonenumber's full metadata costs tens of µs, and the same few numbers (a user's own, their
// contacts) come back in every message.
import { LRUCache } from "lru-cache";

/** `fn` with the answers for its last `max` inputs kept (inputs over 64 characters are not kept). */
export function remembered<R>(fn: (input: string) => R, max = 20_000): (input: string) => R {
  // boxed: an answer may be undefined, which the cache cannot hold
  const cache = new LRUCache<string, { answer: R }>({ max });
  return (input) => {
    const hit = cache.get(input);
    if (hit) return hit.answer;
    const answer = fn(input);
    if (input.length <= 64) cache.set(input, { answer });
    return answer;
  };
}
