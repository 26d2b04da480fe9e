import { SatelliteError } from '../lib/errors.ts';

export const SyncErrorCode = {
  /** The bytes received do not hash to the digest asked for: nothing was stored. */
  blobDigestMismatch: 'BLOB_DIGEST_MISMATCH',
  blobSizeMismatch: 'BLOB_SIZE_MISMATCH',
  /** Downloads are held: outside a sync window or a data cap reached. Progress is kept. */
  paused: 'SYNC_PAUSED',
  stopped: 'SYNC_STOPPED',
  /** A member asked for a blob this satellite's desired state does not reference. */
  notWanted: 'SYNC_BLOB_NOT_WANTED',
} as const;

export function syncError(code: string, message: string, detail?: unknown, cause?: unknown): SatelliteError {
  return new SatelliteError(code, message, { detail, cause });
}
