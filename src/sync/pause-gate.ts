import type { SatelliteError } from '../lib/errors.ts';
import { SyncErrorCode, syncError } from './errors.ts';
import type { Meter } from './meter.ts';
import type { SyncWindows } from './windows.ts';

/**
 * Whether downloads may go on now: not past a data cap, not held for memory, not outside the sync windows (a download
 * under way stops at a window's end only with windowEnd 'pause'). Remembers why it last held, for
 * the status and the time of the next run.
 */
export class PauseGate {
  readonly #meter: Meter;
  readonly #windows: SyncWindows;
  readonly #windowEnd: string;
  /** Why downloads were last held in this run (null: they were not). */
  paused: { reason: string; until: Date | null } | null = null;
  /** Set while memory is above the watchdog's soft limit: no new blob download starts. */
  memoryHold: string | undefined;
  /** A download was held for memory: the release starts a run at once. */
  heldForMemory = false;

  constructor(meter: Meter, windows: SyncWindows, windowEnd: string) {
    this.#meter = meter;
    this.#windows = windows;
    this.#windowEnd = windowEnd;
  }

  /** A new run: nothing held yet. */
  reset(): void {
    this.paused = null;
  }

  /** The reason to hold downloads now (SYNC_PAUSED), if any; checked before each request and after each chunk. */
  check(phase: 'start' | 'stream'): SatelliteError | undefined {
    const cap = this.#meter.capReached();
    if (cap) {
      this.paused = { reason: `${cap.period} data cap of ${cap.limit} bytes reached`, until: cap.resetsAt };
      return syncError(SyncErrorCode.paused, this.paused.reason, cap);
    }
    if (this.memoryHold !== undefined && phase === 'start') {
      this.heldForMemory = true;
      this.paused = { reason: this.memoryHold, until: null };
      return syncError(SyncErrorCode.paused, this.paused.reason);
    }
    if (!this.#windows.isOpen() && (phase === 'start' || this.#windowEnd === 'pause')) {
      const ms = this.#windows.msUntilOpen();
      this.paused = { reason: 'outside the sync window', until: ms === undefined ? null : new Date(Date.now() + ms) };
      return syncError(SyncErrorCode.paused, this.paused.reason);
    }
    return undefined;
  }
}
