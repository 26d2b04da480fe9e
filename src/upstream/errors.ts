import { SatelliteError } from '../lib/errors.ts';

/** Error codes of the upstream client; callers (sync, proxy) branch on these. */
export const UpstreamErrorCode = {
  /** DNS, connection refused or reset, TLS failure, connect/headers/body timeouts, 502/503/504. */
  unreachable: 'UPSTREAM_UNREACHABLE',
  /** 401/403 after trying the configured credentials or a fresh token; token realm refused us. */
  auth: 'UPSTREAM_AUTH',
  /** 404: manifest, blob or repository unknown. */
  notFound: 'UPSTREAM_NOT_FOUND',
  /** 429 still after retries (or Retry-After beyond maxRetryAfterMs); detail.retryAfterMs. */
  rateLimited: 'UPSTREAM_RATE_LIMITED',
  /** The upstream broke the protocol: bad Content-Range, oversize manifest, 5xx, unexpected status. */
  protocol: 'UPSTREAM_PROTOCOL',
  /** The bytes do not hash to the digest asked for or announced. */
  digestMismatch: 'DIGEST_MISMATCH',
} as const;

export type UpstreamErrorCodeValue = (typeof UpstreamErrorCode)[keyof typeof UpstreamErrorCode];

/** What an upstream error carries in `detail` (all optional; never credentials or signed URLs). */
export interface UpstreamErrorDetail {
  /** The upstream's HTTP status, when there was a response. */
  status?: number;
  /** How long the upstream asked us to wait (Retry-After), in ms. */
  retryAfterMs?: number;
  repo?: string;
  reference?: string;
  /** First OCI error code of the response body (MANIFEST_UNKNOWN, NAME_UNKNOWN, DENIED...). */
  registryCode?: string;
  /** The network error code (ECONNREFUSED, UND_ERR_SOCKET...). */
  errno?: string;
  /** For body failures: bytes received before the failure. */
  bytes?: number;
  /** Origin that answered, when it was not the registry (a redirect target). */
  origin?: string;
}

export function upstreamError(
  code: UpstreamErrorCodeValue,
  message: string,
  detail: UpstreamErrorDetail = {},
  cause?: unknown,
): SatelliteError {
  return new SatelliteError(code, message, { detail, cause, statusCode: detail.status });
}

/** The typed detail of an upstream SatelliteError (empty object for anything else). */
export function upstreamDetail(err: unknown): UpstreamErrorDetail {
  if (err instanceof SatelliteError && typeof err.detail === 'object' && err.detail !== null) {
    return err.detail as UpstreamErrorDetail;
  }
  return {};
}
