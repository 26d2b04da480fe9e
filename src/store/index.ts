export { Store } from './store.ts';
export type { StoreConfig } from './context.ts';
export type { BlobInfo, ExpectedBlob } from './blobs.ts';
export type { StoredManifest, Referrer, PutManifestOptions } from './manifests.ts';
export type { GcResult } from './gc.ts';
export type { ReconcileReport } from './reconcile.ts';
export { StoreErrorCode } from './errors.ts';
