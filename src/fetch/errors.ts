import { SatelliteError } from '../lib/errors.ts';

/** The verdicts of a blob fetch, the same for sync, the proxy and peers. */
export const FetchErrorCode = {
  /** The bytes received do not hash to the digest asked for: they were discarded, nothing stored. */
  digestMismatch: 'DIGEST_MISMATCH',
  /** A source's size contradicts the manifest or an earlier answer, or it sent more or fewer bytes. */
  sizeMismatch: 'SIZE_MISMATCH',
  /** A body ended before the blob's size (resumed from the bytes kept; never a verdict). */
  bodyCut: 'BODY_CUT',
  /** A body was cut and resuming it failed (attempts without progress, or the silence deadline). */
  resumeFailed: 'RESUME_FAILED',
  /** A resume was answered from byte 0 (Range ignored) when starting over was no longer allowed. */
  rangeIgnored: 'RANGE_IGNORED',
} as const;

export type FetchErrorCodeValue = (typeof FetchErrorCode)[keyof typeof FetchErrorCode];

export function fetchError(code: FetchErrorCodeValue, message: string, detail?: unknown): SatelliteError {
  return new SatelliteError(code, message, { detail });
}
