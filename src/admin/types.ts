import type { GcPlan, VerifyReport } from '../store/index.ts';
import type { SyncStatus } from '../sync/index.ts';
import type { RunReport } from '../sync/image-state.ts';
import type { MemoryStatus } from '../daemon/memory/watchdog.ts';

/** The admin protocol's answers (JSON over HTTP on the unix socket); `--json` prints them as they are. */

/** One download in progress: bytes on disk now, with a rate and ETA once two samples exist. */
export interface DownloadProgress {
  digest: string;
  bytes: number;
  size: number;
  bytesPerSecond: number | null;
  etaSeconds: number | null;
}

export interface StatusReport {
  version: string;
  uptimeSeconds: number;
  rssBytes: number;
  /** The memory watchdog (null from a satellite without one). */
  memory: MemoryStatus | null;
  upstream: SyncStatus['upstream'];
  /** appliedFrom: what applied it, a sync run or a bundle import. */
  generation: { desired: number | null; applied: number | null; appliedFrom: 'sync' | 'bundle' | null; appliedAt: string | null };
  running: boolean;
  nextRunAt: string | null;
  lastRun: RunReport | null;
  paused: SyncStatus['paused'];
  images: SyncStatus['images'];
  downloads: DownloadProgress[];
  meters: Array<{ period: string; window: string; bytes: number; capBytes: number | null }>;
  disk: { dataDir: string; storeBlobs: number; storeBytes: number; freeBytes: number; totalBytes: number };
  /** The control plane's connection (null: no control section). */
  control: { satelliteId: string; connected: boolean; detail: Record<string, unknown> } | null;
  /** Site peers (null: no peers section). */
  peers: { members: Array<{ key: string; url: string }>; detail: Record<string, unknown> } | null;
  proxy: object;
}

export type ImageSource = 'sync' | 'proxy' | 'push';

export interface ImageRow {
  repository: string;
  /** The tag, or null for a manifest no tag points at. */
  tag: string | null;
  digest: string;
  mediaType: string;
  /** Manifest plus the blobs this store holds for it (for an index: of the platforms stored). */
  sizeBytes: number;
  platforms: string[];
  source: ImageSource;
  lastPulledAt: string | null;
}

export interface SyncStarted {
  started: true;
  /** A run was already in progress: this request joined it. */
  joined: boolean;
}

export interface GcReport extends GcPlan {
  dryRun: boolean;
  /** Present after a real collection: what it removed (bytesFreed above is the same number). */
  linksRemoved?: number;
}

/** Lines of the verify stream (NDJSON). */
export type VerifyEvent =
  | { type: 'progress'; blobsDone: number; blobs: number; bytesDone: number; bytes: number }
  | { type: 'result'; report: VerifyReport }
  | { type: 'error'; code: string; message: string };

export type { RunReport, VerifyReport };
