import { SatelliteError } from '../lib/errors.ts';

/** Codes the proxy throws; the registry maps them to OCI errors (same names as the OCI codes). */
export const ProxyErrorCode = {
  blobUnknown: 'BLOB_UNKNOWN',
  manifestUnknown: 'MANIFEST_UNKNOWN',
  /** Too many distinct upstream fetches at once. */
  busy: 'TOOMANYREQUESTS',
} as const;

export function proxyError(code: (typeof ProxyErrorCode)[keyof typeof ProxyErrorCode], message: string, detail?: unknown): SatelliteError {
  return new SatelliteError(code, message, { detail });
}
