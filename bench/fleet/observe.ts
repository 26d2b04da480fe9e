import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import type { GenerationsRecord } from '../../src/groundcontrol/db/records.ts';
import type { GroundControl } from '../../test/helpers/groundcontrol.ts';

/** Where a round sees how many acknowledgements of a generation Ground Control has recorded. */
export interface AckObserver {
  readonly name: 'api' | 'lmdb';
  /** How many satellites Ground Control shows as having acknowledged (and applied) `generation`. */
  recorded(generation: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * The operator's view: GET /api/v1/status?state=out-of-sync&limit=100, a dashboard's "what is
 * not in sync yet" page with the fleet-wide counts. counts.inSync is the number recorded: the
 * simulated satellites apply a generation as they receive it, so in sync = acknowledged; the
 * round's answer made every satellite out of sync first (the new generation is stored before the
 * API answers).
 */
export function apiObserver(gc: GroundControl): AckObserver {
  return {
    name: 'api',
    async recorded() {
      const res = await gc.api<{ counts: { inSync: number } }>('GET', '/api/v1/status?state=out-of-sync&limit=100');
      if (res.status !== 200) throw new Error(`GET /api/v1/status answered ${res.status}`);
      return res.body.counts.inSync;
    },
    close: async () => undefined,
  };
}

/**
 * The same records read straight from Ground Control's LMDB, read-only, from this process (LMDB is
 * multi-process safe; the CLI's admin-token command does the same): what the status API would show
 * at that moment (a report is committed and flushed before its PUBACK), at no cost to Ground
 * Control, so a fine poll interval does not slow down what it measures.
 */
export function lmdbObserver(gc: GroundControl): AckObserver {
  const root: RootDatabase = open({ path: join(gc.dataDir, 'db'), readOnly: true, compression: false, maxDbs: 32 });
  const generations = root.openDB<GenerationsRecord, string>({ name: 'idx-generations' });
  return {
    name: 'lmdb',
    async recorded(generation) {
      root.resetReadTxn(); // see the other process's newest commit
      let n = 0;
      for (const { value } of generations.getRange({})) if ((value.acknowledged ?? -1) >= generation) n++;
      return n;
    },
    close: () => root.close(),
  };
}
