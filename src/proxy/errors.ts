import { SatelliteError } from '../lib/errors.ts';

/** Codes the proxy throws; the registry maps them to OCI errors (same names as the OCI codes). */
export const ProxyErrorCode = {
  blobUnknown: 'BLOB_UNKNOWN',
  manifestUnknown: 'MANIFEST_UNKNOWN',
  /** Too many distinct upstream fetches at once. */
  busy: 'TOOMANYREQUESTS',
  /** The fetched bytes did not hash to the digest: nothing was stored. */
  digestMismatch: 'PROXY_DIGEST_MISMATCH',
  sizeMismatch: 'PROXY_SIZE_MISMATCH',
  /** The upstream body was cut and resuming it failed (attempts without progress, or the silence deadline). */
  resumeFailed: 'PROXY_RESUME_FAILED',
  /** A resume was answered from byte 0 (Range ignored) after a client had been sent bytes. */
  rangeIgnored: 'PROXY_RANGE_IGNORED',
} as const;

export function proxyError(code: (typeof ProxyErrorCode)[keyof typeof ProxyErrorCode], message: string, detail?: unknown): SatelliteError {
  return new SatelliteError(code, message, { detail });
}
