export { createBundle, type CreateBundleOptions, type CreateBundleReport } from './create.ts';
export { importBundle, type ImportReport } from './import.ts';
export { BUNDLE_FORMAT, readBundleManifest, LayoutSource, type BundleManifest, type BundleImage } from './layout.ts';
export { exportBundle, exportFromStore, type ExportReport, type ExportRequest } from './export.ts';
export { storeApplier } from './startup.ts';
