export { copyKept } from './copy-kept.ts';
export { FetchErrorCode, fetchError, type FetchErrorCodeValue } from './errors.ts';
export { Fill, type FillOptions } from './fill.ts';
export { Fills } from './fills.ts';
export type { FillPolicy, FillStore, OpenedPartial } from './ports.ts';
export { chainSources, type BlobOrigin, type BlobSource, type OpenedBlob, type OpenOptions } from './source.ts';
