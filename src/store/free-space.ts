import { accessSync, closeSync, constants, openSync, statfsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { errorCode, isSatelliteError, SatelliteError } from '../lib/errors.ts';

/** Error codes for a store that cannot take more bytes. */
export const DiskErrorCode = {
  /** Not enough free space (ENOSPC/EDQUOT, or an admission that did not fit): detail has the numbers. */
  full: 'DISK_FULL',
  /** The data directory's filesystem is mounted read-only (EROFS): reads go on, writes wait. */
  readOnly: 'STORE_READ_ONLY',
} as const;

/** Numbers carried by a DISK_FULL error: what was needed and what was free for it. */
export interface DiskFullDetail {
  bytesNeeded: number;
  bytesAvailable: number;
}

export type DiskCondition = 'ok' | 'low' | 'read-only';

export interface DiskState {
  /** ok; low: free space under minFreeBytes; read-only: writes fail with EROFS. */
  condition: DiskCondition;
  freeBytes: number;
  totalBytes: number;
  minFreeBytes: number;
  /** Bytes promised to downloads in flight that they have not written yet. */
  reservedBytes: number;
  checkedAt: string;
}

/** errno numbers as LMDB reports them (lmdb-js gives the number, not the name). */
const ERRNO: Record<number, string> = { 28: 'ENOSPC', 30: 'EROFS', 122: 'EDQUOT' };

/** ENOSPC / EDQUOT / EROFS by name, by number (LMDB), or by LMDB's message. */
function faultOf(err: unknown): 'full' | 'read-only' | undefined {
  const code = errorCode(err);
  const num = typeof (err as { code?: unknown })?.code === 'number' ? ERRNO[(err as { code: number }).code] : undefined;
  const name = code ?? num;
  if (name === 'ENOSPC' || name === 'EDQUOT') return 'full';
  if (name === 'EROFS') return 'read-only';
  const msg = err instanceof Error ? err.message : '';
  if (/No space left|MDB_MAP_FULL|Disk quota exceeded/i.test(msg)) return 'full';
  if (/Read-only file system/i.test(msg)) return 'read-only';
  return undefined;
}

/**
 * True for a write that failed because the disk is full or read-only, including LMDB's failed
 * commits: lmdb-js also rejects every put of a failed transaction and the commit's `commitError`,
 * promises nobody awaits. The caller of the transaction gets the error; the daemon logs these
 * strays instead of exiting (a full disk must not become a crash loop).
 */
export function isStorageWriteFault(err: unknown): boolean {
  if (isDiskError(err) || faultOf(err) !== undefined) return true;
  return err instanceof Error && err.message.startsWith('Commit failed') && 'commitError' in err;
}

export function diskFull(message: string, detail: DiskFullDetail, cause?: unknown): SatelliteError {
  return new SatelliteError(DiskErrorCode.full, message, { detail, cause });
}

/** True for the two codes that mean "the disk cannot take this write now". */
export function isDiskError(err: unknown): err is SatelliteError {
  return isSatelliteError(err, DiskErrorCode.full) || isSatelliteError(err, DiskErrorCode.readOnly);
}

/**
 * Free space and write-ability of the data directory's filesystem, plus the bytes in-flight
 * downloads have been promised (so two downloads never count the same free bytes). Admission:
 * a write of N bytes fits when N + minFreeBytes <= free - reserved.
 */
export class DiskSpace {
  readonly #dir: string;
  readonly #minFree: number;
  readonly #log: Logger;
  readonly #reservations = new Map<number, () => number>();
  #seq = 0;
  #readOnly = false;
  #free = 0;
  #total = 0;
  #checkedAt = new Date(0);

  constructor(dir: string, minFreeBytes: number, log: Logger) {
    this.#dir = dir;
    this.#minFree = minFreeBytes;
    this.#log = log;
    this.refresh();
  }

  get minFreeBytes(): number {
    return this.#minFree;
  }

  get readOnly(): boolean {
    return this.#readOnly;
  }

  /** Reads free space now (statfs, microseconds) and checks the filesystem still takes writes. */
  refresh(): DiskState {
    try {
      const s = statfsSync(this.#dir);
      this.#free = s.bavail * s.bsize;
      this.#total = s.blocks * s.bsize;
    } catch (err) {
      this.#log.warn({ err }, 'cannot read free space of the data directory');
    }
    let ro = false;
    try {
      accessSync(this.#dir, constants.W_OK);
    } catch (err) {
      ro = errorCode(err) === 'EROFS';
    }
    // A filesystem the kernel put in emergency read-only mode still passes access(): once a write
    // said EROFS, only a real write (a tiny probe file, at most every 2 s) says it is writable again.
    if (!ro && this.#readOnly) ro = Date.now() - this.#probedAt < 2000 || !this.#probeWrite();
    this.#setReadOnly(ro);
    this.#checkedAt = new Date();
    return this.state();
  }

  #probedAt = 0;
  #probeWrite(): boolean {
    this.#probedAt = Date.now();
    const path = join(this.#dir, '.write-probe');
    try {
      closeSync(openSync(path, 'w'));
      unlinkSync(path);
      return true;
    } catch (err) {
      return faultOf(err) !== 'read-only';
    }
  }

  state(): DiskState {
    const condition: DiskCondition = this.#readOnly ? 'read-only' : this.#free < this.#minFree ? 'low' : 'ok';
    return {
      condition,
      freeBytes: this.#free,
      totalBytes: this.#total,
      minFreeBytes: this.#minFree,
      reservedBytes: this.reservedBytes(),
      checkedAt: this.#checkedAt.toISOString(),
    };
  }

  reservedBytes(): number {
    let n = 0;
    for (const remaining of this.#reservations.values()) n += Math.max(0, remaining());
    return n;
  }

  /** Bytes a new write may use now: free, minus what in-flight downloads still need, minus the margin. */
  available(): number {
    this.refresh();
    return Math.max(0, this.#free - this.reservedBytes() - this.#minFree);
  }

  /**
   * Throws DISK_FULL (or STORE_READ_ONLY) unless `bytes` fit now. `what` names the write in the
   * message ("blob sha256:…", "image app:v1").
   */
  admit(bytes: number, what: string): void {
    const available = this.available();
    if (this.#readOnly) throw new SatelliteError(DiskErrorCode.readOnly, `the data directory is read-only; cannot store ${what}`);
    if (bytes > available) {
      throw diskFull(`not enough disk space for ${what}: ${bytes} bytes needed, ${available} available (after keeping ${this.#minFree} free)`, {
        bytesNeeded: bytes,
        bytesAvailable: available,
      });
    }
  }

  /**
   * Promises free space to a write in flight: `remaining()` says how many of its bytes are still to
   * be written (it shrinks as the write progresses). Returns the release function.
   */
  reserve(remaining: () => number): () => void {
    const id = ++this.#seq;
    this.#reservations.set(id, remaining);
    return () => void this.#reservations.delete(id);
  }

  /**
   * Turns a filesystem error into DISK_FULL / STORE_READ_ONLY (other errors come back unchanged).
   * `bytesNeeded` is what the failed write wanted, when known.
   */
  translate(err: unknown, what: string, bytesNeeded = 0): unknown {
    if (isDiskError(err)) return err;
    const fault = faultOf(err);
    if (fault === 'full') {
      this.refresh();
      return diskFull(`disk full while writing ${what}`, { bytesNeeded, bytesAvailable: Math.max(0, this.#free - this.#minFree) }, err);
    }
    if (fault === 'read-only') {
      this.#setReadOnly(true);
      this.#probedAt = Date.now();
      return new SatelliteError(DiskErrorCode.readOnly, `the data directory is read-only; cannot store ${what}`, { cause: err });
    }
    return err;
  }

  /** Runs a write, translating disk errors. */
  async guard<T>(what: string, bytesNeeded: number, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const commitError = (err as { commitError?: Promise<unknown> } | undefined)?.commitError;
      if (commitError && typeof commitError.then === 'function') throw await this.#commitFault(err, commitError, what, bytesNeeded);
      throw this.translate(err, what, bytesNeeded);
    }
  }

  /**
   * lmdb-js rejects a failed commit with "Commit failed" and puts the cause in a promise of its own
   * that is rejected only sometimes (and may never settle). The cause, if it comes quickly, decides;
   * otherwise the disk itself: a failed write probe means read-only, almost no free space means full.
   */
  async #commitFault(err: unknown, commitError: Promise<unknown>, what: string, bytesNeeded: number): Promise<unknown> {
    const cause = await Promise.race([
      commitError.then(() => undefined, (e: unknown) => e),
      new Promise<undefined>((resolve) => {
        setTimeout(() => resolve(undefined), 100).unref();
      }),
    ]);
    if (cause !== undefined && faultOf(cause)) return this.translate(cause, `${what} (index)`, bytesNeeded);
    this.refresh();
    if (!this.#readOnly && !this.#probeWrite()) this.#setReadOnly(true);
    if (this.#readOnly) return new SatelliteError(DiskErrorCode.readOnly, `the data directory is read-only; cannot store ${what} (index)`, { cause: err });
    if (this.#free < this.#minFree + 1024 * 1024) {
      return diskFull(`disk full while writing ${what} (index)`, { bytesNeeded, bytesAvailable: Math.max(0, this.#free - this.#minFree) }, err);
    }
    return err;
  }

  #setReadOnly(ro: boolean): void {
    if (ro === this.#readOnly) return;
    this.#readOnly = ro;
    if (ro) this.#log.error({ dir: this.#dir }, 'data directory is read-only: serving what is stored, storing nothing until it is writable');
    else this.#log.info({ dir: this.#dir }, 'data directory is writable again');
  }
}
