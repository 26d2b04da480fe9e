import type { SatelliteConfig } from '../config/index.ts';
import type { StoreConfig } from '../store/index.ts';

/** The store's slice of the satellite config (the daemon and offline commands open it alike). */
export function storeOptions(config: SatelliteConfig): StoreConfig {
  return {
    dataDir: config.dataDir,
    gcGraceSeconds: config.store.gcGraceSeconds,
    uploadTtlSeconds: config.store.uploadTtlSeconds,
    readChunkBytes: config.store.readChunkBytes,
    minFreeBytes: config.store.minFreeBytes,
    pressureGcGraceSeconds: config.store.pressureGcGraceSeconds,
    pressureUploadIdleSeconds: config.store.pressureUploadIdleSeconds,
    ...(config.store.indexMapSizeBytes ? { indexMapSizeBytes: config.store.indexMapSizeBytes } : {}),
  };
}
