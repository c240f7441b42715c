// Answers of rarely changing lookups (links, webhook targets) kept in this process for a short time:
// every message asks them, a change is rare. A change made through this process forgets everything at
// once; `ttlMs` bounds how long a change made elsewhere (another instance, an edit in Redis) goes unseen.

export interface ReadCache {
  /** `load(key)`'s answer, from memory when it is younger than ttlMs. */
  read<T>(key: string, load: () => Promise<T>): Promise<T>;
  /** Runs a change; everything remembered is forgotten before and after it. */
  change<T>(run: () => Promise<T>): Promise<T>;
}

const MAX_ENTRIES = 50_000;

export function createReadCache(ttlMs: number): ReadCache {
  const answers = new Map<string, { answer: unknown; until: number }>();
  // Bumped by every change: a read that started before a change must not keep its (old) answer.
  let generation = 0;
  const forget = () => {
    generation++;
    answers.clear();
  };
  return {
    async read<T>(key: string, load: () => Promise<T>): Promise<T> {
      if (ttlMs <= 0) return load();
      const now = Date.now();
      const known = answers.get(key);
      if (known && known.until > now) return known.answer as T;
      const asked = generation;
      const answer = await load();
      if (asked === generation) {
        if (answers.size >= MAX_ENTRIES) answers.clear(); // a bound, not an LRU: refilled within ttlMs
        answers.set(key, { answer, until: now + ttlMs });
      }
      return answer;
    },
    async change(run) {
      forget();
      try {
        return await run();
      } finally {
        forget();
      }
    },
  };
}
