import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Store } from '../store/index.ts';
import type { BufferPool } from '../lib/buffer-pool.ts';

export interface RegistryLimits {
  maxManifestBytes: number;
}

/** The store operations the registry needs: nothing about LMDB or files. */
export type RegistryStore = Pick<
  Store,
  | 'statBlob'
  | 'openBlob'
  | 'ingestBlob'
  | 'mountBlob'
  | 'unlinkBlob'
  | 'hasBlob'
  | 'blobSize'
  | 'createUpload'
  | 'getUpload'
  | 'appendUpload'
  | 'finishUpload'
  | 'cancelUpload'
  | 'getManifest'
  | 'putManifest'
  | 'deleteManifest'
  | 'deleteTag'
  | 'repositoryExists'
  | 'listTags'
  | 'listRepositories'
  | 'listReferrers'
  | 'pin'
  | 'blobPath'
>;

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Repository name, validated. */
  name: string;
  /** Tag, digest or upload id from the path, unvalidated. */
  ref: string;
  store: RegistryStore;
  limits: RegistryLimits;
  log: Logger;
  /** Aborted when the client goes away before the response is complete. */
  signal: AbortSignal;
  /** Buffers for streaming blobs. */
  pool: BufferPool;
  /** Body bytes a streaming handler sent (for the request log). */
  stats: { bytes?: number };
}

export type Handler = (ctx: RequestContext) => Promise<void>;
