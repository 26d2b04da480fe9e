import type { RunReport } from './image-state.ts';

export type RunResult = RunReport['result'];
export const RUN_RESULTS: readonly RunResult[] = ['ok', 'partial', 'offline', 'paused', 'failed'];

/** Sums over every sync run since this process started (the status endpoint and metrics read them). */
export interface RunTotalsSnapshot {
  runs: Record<RunResult, number>;
  /** Live: bytes of downloads still in progress count as they arrive (the engine's byte counter). */
  bytesFromUpstream: number;
  blobsFetched: number;
  blobsResumed: number;
}

/** Adds up the engine's run reports: counters that only grow, unlike `lastRun`. */
export class RunTotals {
  readonly #t: RunTotalsSnapshot = {
    runs: { ok: 0, partial: 0, offline: 0, paused: 0, failed: 0 },
    bytesFromUpstream: 0,
    blobsFetched: 0,
    blobsResumed: 0,
  };

  readonly #liveBytes: (() => number) | undefined;

  /** With the engine's `bytesFromUpstream`, the byte count is live instead of summed at each run's end. */
  constructor(engine: { onRun(listener: (report: RunReport) => void): () => void; readonly bytesFromUpstream?: number }) {
    engine.onRun((r) => this.add(r));
    if (engine.bytesFromUpstream !== undefined) this.#liveBytes = () => engine.bytesFromUpstream ?? 0;
  }

  add(r: RunReport): void {
    this.#t.runs[r.result]++;
    this.#t.bytesFromUpstream += r.bytesFromUpstream;
    this.#t.blobsFetched += r.blobsFetched;
    this.#t.blobsResumed += r.blobsResumed;
  }

  snapshot(): RunTotalsSnapshot {
    return { ...this.#t, runs: { ...this.#t.runs }, ...(this.#liveBytes ? { bytesFromUpstream: this.#liveBytes() } : {}) };
  }
}
