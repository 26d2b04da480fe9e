/**
 * Retry-After (RFC 9110 §10.2.3) in ms from `now`: delay-seconds or an HTTP-date. Undefined when
 * absent or unparsable; a date in the past gives 0.
 */
export function parseRetryAfter(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // Only accept something that looks like a date: Date.parse is lenient with arbitrary strings.
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Exponential backoff with jitter for attempt 0, 1, 2...: base * 2^attempt, capped, scaled by a
 * random factor in [0.5, 1) so clients that failed together do not retry together.
 */
export function backoffMs(attempt: number, baseMs = 250, capMs = 10_000, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(ceiling * (0.5 + random() / 2));
}
