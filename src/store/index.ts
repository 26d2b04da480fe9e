export { Store } from './store.ts';
export type { StoreConfig } from './context.ts';
export type { BlobInfo, ExpectedBlob } from './blobs.ts';
export type { StoredManifest, Referrer, PutManifestOptions, ImageManifest } from './manifests.ts';
export type { Partial } from './partials.ts';
export type { GcResult } from './gc.ts';
export type { ReconcileReport } from './reconcile.ts';
export { StoreErrorCode } from './errors.ts';
export type { CacheIndex, CachedTag, CachedEntry } from './cache-index.ts';
