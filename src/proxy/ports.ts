import type { Readable } from 'node:stream';
import type { Store } from '../store/index.ts';

/** The store operations the proxy uses. */
export type ProxyStore = Pick<
  Store,
  | 'pin'
  | 'tempPath'
  | 'commitVerifiedFile'
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

/** A blob from a source other than the upstream (a peer satellite of the site). */
export interface SourcedBlob {
  total: number;
  body: Readable;
  /** Who sent it (a peer's id), for logs and for reporting bad bytes. */
  source: string;
}

/**
 * Where a miss looks before the upstream (the daemon wires the site's peers in). open() must not
 * keep a device waiting long: it answers within seconds, undefined when no source has the blob.
 */
export interface BlobSourcePort {
  open(repo: string, digest: string, signal: AbortSignal): Promise<SourcedBlob | undefined>;
  /** The bytes from `source` did not hash to `digest`: do not ask it for that digest again. */
  reportBad(digest: string, source: string): void;
}
