import { isSatelliteError, SatelliteError } from '../lib/errors.ts';

/** Codes the proxy throws; the registry maps them to OCI errors (same names as the OCI codes). */
export const ProxyErrorCode = {
  blobUnknown: 'BLOB_UNKNOWN',
  manifestUnknown: 'MANIFEST_UNKNOWN',
  /** Too many distinct upstream fetches at once. */
  busy: 'TOOMANYREQUESTS',
  /** The upstream refused the credentials used (internal: mapped to 404 or 401 by the proxy). */
  refused: 'UPSTREAM_REFUSED',
  unauthorized: 'UNAUTHORIZED',
  /** The signature policy (enforce) refuses it: 403 DENIED, the message names the code and reason. */
  signatureRequired: 'SIGNATURE_REQUIRED',
  signatureInvalid: 'SIGNATURE_INVALID',
} as const;

export function isSignatureRefusal(err: unknown): boolean {
  return isSatelliteError(err, ProxyErrorCode.signatureRequired) || isSatelliteError(err, ProxyErrorCode.signatureInvalid);
}

/**
 * 401 for a device: the registry answers it with `challenge` as WWW-Authenticate, so the client
 * retries with its credentials for the registry host it thinks it talks to.
 */
export class DeviceAuthError extends SatelliteError {
  readonly challenge: string;

  constructor(message: string, challenge: string) {
    super(ProxyErrorCode.unauthorized, message);
    this.challenge = challenge;
  }
}

export function proxyError(code: (typeof ProxyErrorCode)[keyof typeof ProxyErrorCode], message: string, detail?: unknown): SatelliteError {
  return new SatelliteError(code, message, { detail });
}
