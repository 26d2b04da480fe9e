import type { Logger } from 'pino';
import type { KeyedMutex } from '../lib/keyed-mutex.ts';
import type { IndexDb } from './index-db.ts';
import type { Layout } from './layout.ts';

export interface StoreConfig {
  dataDir: string;
  /** Blobs and links younger than this are never collected (covers push between blob and manifest). */
  gcGraceSeconds: number;
  /** Upload sessions idle longer than this are purged. */
  uploadTtlSeconds: number;
  /** LMDB map size; grows on demand but a generous start avoids resizes. */
  indexMapSizeBytes?: number;
  /** Read buffer per blob stream: bounds memory per client. */
  readChunkBytes: number;
  /** Free space kept on the data directory's filesystem: a write is admitted only if this much stays free. */
  minFreeBytes?: number;
  /** Under disk pressure: GC grace period (shorter than gcGraceSeconds) and idle time that makes an upload abandoned. */
  pressureGcGraceSeconds?: number;
  pressureUploadIdleSeconds?: number;
}

/** What the store's parts share. */
export interface StoreContext {
  config: StoreConfig;
  log: Logger;
  db: IndexDb;
  layout: Layout;
  /** Serialises commit and collection of one digest. */
  digestLocks: KeyedMutex;
  /** Digests in use by in-flight work (downloads, pulls) that GC must not touch: digest -> count. */
  pins: Map<string, number>;
  /** True for a partial download its owner still wants (GC keeps it); see Store.keepPartials. */
  keepPartial?: ((digest: string) => boolean) | undefined;
}
