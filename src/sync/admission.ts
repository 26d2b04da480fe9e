import type { Logger } from 'pino';
import { isSatelliteError } from '../lib/errors.ts';
import { DiskErrorCode, type DiskFullDetail, type Store } from '../store/index.ts';

type Blob = { digest: string; size: number };

/** Bytes the blobs still need on disk: size minus what is stored or already in their partial files. */
export function bytesStillNeeded(store: Store, blobs: readonly Blob[]): number {
  let n = 0;
  for (const b of blobs) {
    if (store.hasBlob(b.digest)) continue;
    n += Math.max(0, b.size - Math.min(b.size, store.partialBytes(b.digest) ?? 0));
  }
  return n;
}

/**
 * Admission by free space: the bytes `blobs` still need must fit beside the store's margin and what
 * other downloads in flight still need. When they do not, space is reclaimed (cache, abandoned
 * uploads, orphaned partials, GC) and the check repeated; still short -> DISK_FULL with the numbers.
 * Admitted: the space stays reserved (shrinking as bytes arrive) until release() is called.
 */
export async function admit(
  store: Store,
  blobs: readonly Blob[],
  what: string,
  log: Logger,
  keepPartials?: ReadonlySet<string>,
): Promise<() => void> {
  const unique = [...new Map(blobs.map((b) => [b.digest, b])).values()];
  const need = bytesStillNeeded(store, unique);
  if (need === 0) return () => undefined;
  try {
    store.admitWrite(need, what);
  } catch (err) {
    if (!isSatelliteError(err, DiskErrorCode.full)) throw err;
    await store.relieve(need, keepPartials);
    store.admitWrite(need, what);
    log.info({ what, bytesNeeded: need }, 'admitted after reclaiming disk space');
  }
  return store.disk.reserve(() => bytesStillNeeded(store, unique));
}

/** The numbers of a DISK_FULL error, if it is one. */
export function diskFullDetail(err: unknown): DiskFullDetail | undefined {
  if (!isSatelliteError(err, DiskErrorCode.full)) return undefined;
  const d = err.detail as Partial<DiskFullDetail> | undefined;
  if (typeof d?.bytesNeeded !== 'number' || typeof d.bytesAvailable !== 'number') return undefined;
  return { bytesNeeded: d.bytesNeeded, bytesAvailable: d.bytesAvailable };
}
