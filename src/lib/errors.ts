/**
 * Base error for every domain. Code is a stable string callers branch on;
 * statusCode is a hint for HTTP boundaries. Domains list their codes in their own errors.ts.
 */
export class SatelliteError extends Error {
  readonly code: string;
  readonly statusCode: number | undefined;
  readonly detail: unknown;

  constructor(code: string, message: string, opts: { statusCode?: number; detail?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SatelliteError';
    this.code = code;
    this.statusCode = opts.statusCode;
    this.detail = opts.detail;
  }
}

export function isSatelliteError(err: unknown, code?: string): err is SatelliteError {
  return err instanceof SatelliteError && (code === undefined || err.code === code);
}

/** Node system errors carry a string code (ENOENT, EEXIST...). */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/** The first error code found on err or its causes (undici wraps socket errors). */
export function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    const code = errnoCode(e);
    if (code) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
