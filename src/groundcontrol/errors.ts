import { SatelliteError } from '../lib/errors.ts';

/**
 * Every error code Ground Control answers with, and its HTTP status. API bodies are
 * `{"error":{"code","message"}}`; clients branch on code.
 */
export const GC_ERRORS = {
  BODY_INVALID: 400,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  QUERY_INVALID: 400,
  UNAUTHORIZED: 401,
  TOKEN_UNKNOWN: 401,
  /** A cookie-authenticated change without the CSRF token, or from another origin. */
  CSRF_REJECTED: 403,
  TOKEN_EXPIRED: 410,
  TOKEN_USED: 409,
  NOT_FOUND: 404,
  SATELLITE_UNKNOWN: 404,
  GROUP_UNKNOWN: 404,
  COMMAND_UNKNOWN: 404,
  ASSIGNMENT_UNKNOWN: 404,
  ASSIGNMENT_EXISTS: 409,
  METHOD_NOT_ALLOWED: 405,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type GcErrorCode = keyof typeof GC_ERRORS;

/** A Ground Control error with its HTTP status from the table. */
export function gcError(code: GcErrorCode, message: string, opts: { detail?: unknown; cause?: unknown } = {}): SatelliteError {
  return new SatelliteError(code, message, { statusCode: GC_ERRORS[code], ...opts });
}

/** Status for any error: the table's for known codes, 500 for faults. */
export function statusOf(err: unknown): number {
  if (err instanceof SatelliteError) {
    if (err.statusCode !== undefined) return err.statusCode;
    if (err.code in GC_ERRORS) return GC_ERRORS[err.code as GcErrorCode];
  }
  return 500;
}
