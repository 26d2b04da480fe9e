export { copyKept } from './copy-kept.ts';
export { FetchErrorCode, fetchError, type FetchErrorCodeValue } from './errors.ts';
export { chainSources, type BlobOrigin, type BlobSource, type OpenedBlob, type OpenOptions } from './source.ts';
