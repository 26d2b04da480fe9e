import type { SatelliteError } from '../lib/errors.ts';
import { UpstreamErrorCode, upstreamError, type UpstreamErrorDetail } from './errors.ts';
import { parseRetryAfter } from './retry-after.ts';

export interface ErrorBodyInfo {
  registryCode?: string;
  message?: string;
}

/**
 * The error for an unwanted HTTP status: 401/403 auth, 404 not found, 429 rate limited,
 * 502/503/504 unreachable (a gateway or the registry itself is down), anything else protocol.
 * Retry-After is kept in detail.retryAfterMs for the caller's scheduler.
 */
export function statusError(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  info: ErrorBodyInfo,
  what: string,
  detail: UpstreamErrorDetail,
): SatelliteError {
  const retryAfterMs = status === 429 || status >= 500 ? parseRetryAfter(headers['retry-after']) : undefined;
  const full: UpstreamErrorDetail = {
    ...detail,
    status,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    ...(info.registryCode ? { registryCode: info.registryCode } : {}),
  };
  const said = [info.registryCode, info.message].filter(Boolean).join(': ');
  const wait = retryAfterMs !== undefined ? `; Retry-After ${Math.ceil(retryAfterMs / 1000)} s` : '';
  const message = `${what}: upstream answered ${status}${said ? ` (${said})` : ''}${wait}`;
  let code: (typeof UpstreamErrorCode)[keyof typeof UpstreamErrorCode] = UpstreamErrorCode.protocol;
  if (status === 401 || status === 403) code = UpstreamErrorCode.auth;
  else if (status === 404) code = UpstreamErrorCode.notFound;
  else if (status === 429) code = UpstreamErrorCode.rateLimited;
  else if (status === 502 || status === 503 || status === 504) code = UpstreamErrorCode.unreachable;
  return upstreamError(code, message, full);
}
