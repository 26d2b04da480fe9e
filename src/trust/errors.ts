import { SatelliteError } from '../lib/errors.ts';

export const TrustErrorCode = {
  /** A policy applies (mode enforce) and the image has no signature at all. */
  required: 'SIGNATURE_REQUIRED',
  /** Signatures exist but none verifies: wrong key, payload for another digest or repository, bad bytes. */
  invalid: 'SIGNATURE_INVALID',
  /** A trusted key in the desired state cannot be read as a public key. */
  keyInvalid: 'TRUST_KEY_INVALID',
} as const;

export function trustError(code: string, message: string, detail?: unknown, cause?: unknown): SatelliteError {
  return new SatelliteError(code, message, { detail, cause });
}
