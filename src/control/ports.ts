import type { Store, VerifyReport } from '../store/index.ts';
import type { DesiredState, RunReport, SyncStatus } from '../sync/index.ts';

/** What the control plane needs from the store: its own records (outbox, commands, counters), GC, and disk usage. */
export type ControlStore = Pick<Store, 'controlState' | 'collectGarbage' | 'usage' | 'disk'>;

/** What the control plane needs from the sync engine (SyncEngine implements it). */
export interface SyncPort {
  runOnce(): Promise<RunReport>;
  status(): SyncStatus;
  onRun(listener: (report: RunReport) => void): () => void;
  readonly desired: DesiredState | undefined;
}

/** Runs the satellite's blob verification (daemon/verify.ts, the same as `satellite verify`). */
export type VerifyPort = (repair: boolean) => Promise<VerifyReport>;
