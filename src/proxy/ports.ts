import type { Readable } from 'node:stream';
import type { Store } from '../store/index.ts';

/** The store operations the proxy uses. */
export type ProxyStore = Pick<
  Store,
  | 'pin'
  | 'partialSize'
  | 'beginPartial'
  | 'checkpointPartial'
  | 'commitPartial'
  | 'discardPartial'
  | 'cacheIndex'
  | 'hasBlob'
  | 'statBlob'
  | 'linkBlob'
  | 'getManifest'
  | 'putManifest'
  | 'deleteManifest'
  | 'deleteTag'
  | 'childrenOf'
  | 'blobsOf'
  | 'removeUnreferencedBlobs'
  | 'admitWrite'
  | 'relieve'
  | 'disk'
  | 'setCacheEvictor'
>;

/** What the proxy needs from an upstream registry client (src/upstream's UpstreamClient). */
export interface ProxyUpstream {
  getManifest(repo: string, reference: string, signal?: AbortSignal): Promise<{ digest: string; mediaType: string; body: Buffer }>;
  resolveTag(repo: string, tag: string, signal?: AbortSignal): Promise<{ digest: string; mediaType: string; size: number }>;
  fetchBlob(repo: string, digest: string, opts?: { offset?: number; signal?: AbortSignal }): Promise<{ status: 200 | 206; start: number; total?: number; body: Readable }>;
  close(): Promise<void>;
}
