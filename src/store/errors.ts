import { SatelliteError } from '../lib/errors.ts';

/** Store error codes; the registry maps them to OCI error responses. */
export const StoreErrorCode = {
  blobUnknown: 'BLOB_UNKNOWN',
  manifestUnknown: 'MANIFEST_UNKNOWN',
  manifestBlobUnknown: 'MANIFEST_BLOB_UNKNOWN',
  manifestReferenced: 'MANIFEST_REFERENCED',
  digestInvalid: 'DIGEST_INVALID',
  sizeInvalid: 'SIZE_INVALID',
  uploadUnknown: 'BLOB_UPLOAD_UNKNOWN',
  uploadInvalid: 'BLOB_UPLOAD_INVALID',
  rangeInvalid: 'RANGE_INVALID',
  nameUnknown: 'NAME_UNKNOWN',
  /** A blob verification is already running (admin socket or Ground Control): one at a time. */
  verifyRunning: 'VERIFY_RUNNING',
} as const;

export function storeError(code: string, message: string, detail?: unknown): SatelliteError {
  return new SatelliteError(code, message, { detail });
}
