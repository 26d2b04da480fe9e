import { SatelliteError } from '../lib/errors.ts';

export const SyncErrorCode = {
  /** Downloads are held: outside a sync window or a data cap reached. Progress is kept. */
  paused: 'SYNC_PAUSED',
  stopped: 'SYNC_STOPPED',
  /** A member asked for a blob this satellite's desired state does not reference. */
  notWanted: 'SYNC_BLOB_NOT_WANTED',
} as const;

export function syncError(code: string, message: string, detail?: unknown, cause?: unknown): SatelliteError {
  return new SatelliteError(code, message, { detail, cause });
}
