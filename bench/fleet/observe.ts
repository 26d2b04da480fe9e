import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import type { StatusRecord } from '../../src/groundcontrol/db/records.ts';
import type { GroundControl } from '../../test/helpers/groundcontrol.ts';

/** Where a round sees what Ground Control has recorded: [satellite id, acknowledged generation]. */
export interface AckObserver {
  readonly name: 'api' | 'lmdb';
  read(): Promise<Array<[string, number | null]>>;
  close(): Promise<void>;
}

/** The operator's view: GET /api/v1/status (costs Ground Control a full status build per poll). */
export function apiObserver(gc: GroundControl): AckObserver {
  return {
    name: 'api',
    async read() {
      const res = await gc.api<{ satellites: Array<{ id: string; acknowledgedGeneration: number | null }> }>('GET', '/api/v1/status');
      if (res.status !== 200) throw new Error(`GET /api/v1/status answered ${res.status}`);
      return res.body.satellites.map((r) => [r.id, r.acknowledgedGeneration]);
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
  const status = root.openDB<StatusRecord, string>({ name: 'status' });
  return {
    name: 'lmdb',
    async read() {
      root.resetReadTxn(); // see the other process's newest commit
      const out: Array<[string, number | null]> = [];
      for (const { key, value } of status.getRange({})) out.push([key, value.state?.desiredGeneration ?? null]);
      return out;
    },
    close: () => root.close(),
  };
}
