/** A parsed `Content-Range: bytes start-end/total` (total undefined for "*"). */
export interface ContentRange {
  start: number;
  end: number;
  total: number | undefined;
}

/**
 * Parses the Content-Range of a 206 (RFC 9110 §14.4). Undefined for anything malformed or
 * inconsistent (end < start, end beyond total), so callers can treat that as a protocol error.
 */
export function parseContentRange(header: string | string[] | undefined): ContentRange | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const m = /^\s*bytes\s+(\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)\s*$/i.exec(value ?? '');
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (end < start || (total !== undefined && end >= total)) return undefined;
  return { start, end, total };
}

/** The total of an unsatisfied-range answer (`bytes *\/total`, sent with 416). */
export function parseUnsatisfiedRange(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const m = /^\s*bytes\s+\*\/(\d{1,15})\s*$/i.exec(value ?? '');
  return m ? Number(m[1]) : undefined;
}
