// Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Pure.

/** Milliseconds to wait, or undefined when the header is absent or unreadable. A past date means 0. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!raw) return undefined;
  // The RFC allows digits only; a fraction is tolerated because some proxies send one.
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.round(Number(raw) * 1000);
  // Date.parse reads IMF-fixdate and the obsolete RFC 850 / asctime forms well enough; demand a
  // weekday or month name so that garbage such as "-5" or "soon" is not read as a date.
  if (!/[a-z]{3}/i.test(raw)) return undefined;
  const at = Date.parse(raw);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
