import type { Logger } from 'pino';
import type { DiskSpace } from '../store/index.ts';

/** Why runs are held for the disk, as the status says it. */
export type DiskHeldReason = { reason: string; bytesNeeded: number | null; until: string | null } | null;

/**
 * Runs that would spend WAN on bytes the disk cannot take wait: while the disk is read-only, or
 * after images were refused for space, until that much is free, the desired state changes, or
 * sync.diskFullRetrySeconds pass.
 */
export class DiskHold {
  readonly #disk: DiskSpace;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #retryMs: number;
  #hold: { generation: number; bytesNeeded: number; until: number } | undefined;

  constructor(disk: DiskSpace, log: Logger, opts: { intervalSeconds: number; diskFullRetrySeconds: number }) {
    this.#disk = disk;
    this.#log = log;
    this.#intervalMs = opts.intervalSeconds * 1000;
    this.#retryMs = opts.diskFullRetrySeconds * 1000;
  }

  /** After a run: images of `generation` were short of these many bytes each (none: no hold). */
  set(generation: number, shortBy: number[]): void {
    this.#hold = shortBy.length > 0 ? { generation, bytesNeeded: Math.min(...shortBy), until: Date.now() + this.#retryMs } : undefined;
  }

  /** Milliseconds to wait before a scheduled run (0 = run now); a new desired state ends the wait. */
  wait(generation: number | undefined): number {
    const disk = this.#disk.refresh();
    if (disk.condition === 'read-only') return this.#intervalMs;
    const hold = this.#hold;
    if (!hold) return 0;
    const now = Date.now();
    if (generation !== hold.generation || now >= hold.until || this.#disk.available() >= hold.bytesNeeded) {
      this.#hold = undefined;
      return 0;
    }
    this.#log.debug({ bytesNeeded: hold.bytesNeeded, availableBytes: this.#disk.available() }, 'sync held: waiting for disk space');
    return Math.min(this.#intervalMs, hold.until - now);
  }

  reason(): DiskHeldReason {
    if (this.#disk.readOnly) return { reason: 'STORE_READ_ONLY', bytesNeeded: null, until: null };
    const hold = this.#hold;
    return hold ? { reason: 'DISK_FULL', bytesNeeded: hold.bytesNeeded, until: new Date(hold.until).toISOString() } : null;
  }
}
