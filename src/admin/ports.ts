import type { ImportReport } from '../bundle/import.ts';
import type { ExportReport, ExportRequest } from '../bundle/export.ts';
import type { GcReport, ImageRow, RunReport, StatusReport, SyncStarted, VerifyReport } from './types.ts';

/** What the admin socket's handlers ask of the running satellite; the daemon wires the domains in. */
export interface AdminPorts {
  status(): Promise<StatusReport>;
  images(): Promise<ImageRow[]>;
  /** Starts a run now (or joins the one in progress). */
  startSync(): SyncStarted;
  /** Resolves when the run started or joined by startSync ends. */
  waitSync(): Promise<RunReport>;
  gc(dryRun: boolean): Promise<GcReport>;
  verify(
    repair: boolean,
    onProgress: (p: { blobsDone: number; blobs: number; bytesDone: number; bytes: number }) => void,
    signal: AbortSignal,
  ): Promise<VerifyReport>;
  /** Imports the bundle (or plain OCI layout) at this absolute path into the running store (one import at a time); `repository` for a layout's bare tags. */
  importBundle(path: string, repository?: string): Promise<ImportReport>;
  /** Writes a bundle of what the store holds (one bundle operation at a time). */
  exportBundle(req: ExportRequest): Promise<ExportReport>;
}
