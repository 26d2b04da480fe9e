export { UpstreamClient, MAX_MANIFEST_BYTES } from './client.ts';
export type { BlobResult, ManifestResult, ResolvedTag, UpstreamClientOptions } from './client.ts';
export { upstreamConfigSchema, UPSTREAM_DEFAULTS } from './config-schema.ts';
export type { UpstreamConfig } from './config-schema.ts';
export { UpstreamErrorCode, upstreamDetail } from './errors.ts';
export type { UpstreamErrorCodeValue, UpstreamErrorDetail } from './errors.ts';
