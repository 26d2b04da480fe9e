import type { ReferrersPage } from '../oci/referrers.ts';
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
  // Signature policy: reading and keeping signatures, which blobs admitted manifests reference.
  | 'isBlobReferenced'
  | 'manifestsOf'
  | 'openBlob'
  | 'blobSize'
  | 'listReferrers'
  | 'tempPath'
  | 'commitVerifiedFile'
  | 'commitImage'
>;

/** What the proxy needs from an upstream registry client (src/upstream's UpstreamClient). */
export interface ProxyUpstream {
  getManifest(repo: string, reference: string, signal?: AbortSignal): Promise<{ digest: string; mediaType: string; body: Buffer }>;
  resolveTag(repo: string, tag: string, signal?: AbortSignal): Promise<{ digest: string; mediaType: string; size: number }>;
  fetchBlob(repo: string, digest: string, opts?: { offset?: number; signal?: AbortSignal }): Promise<{ status: 200 | 206; start: number; total?: number; body: Readable }>;
  close(): Promise<void>;
  /** One page of the OCI 1.1 referrers API; undefined when the upstream has none (404). */
  getReferrers?(repo: string, digest: string, opts?: { artifactType?: string; next?: string }, signal?: AbortSignal): Promise<ReferrersPage | undefined>;
  /** The same upstream with a device's Authorization (Basic or Bearer); undefined for other schemes. */
  forDevice(authorization: string): ProxyUpstream | undefined;
  /** The WWW-Authenticate a device should get for repo (learned from the upstream). */
  challenge(repo: string | undefined, signal?: AbortSignal): Promise<string | undefined>;
  /** A device's GET at the token realm (`url`: realm with the device's query), answered as is. */
  relayTokenRequest(url: URL, authorization: string | undefined, signal?: AbortSignal): Promise<{ status: number; headers: Record<string, string>; body: Readable }>;
  /** true: these credentials may read it; false: refused (401/403); throws on 404 and network errors. */
  checkAccess(repo: string, what: AccessCheck, signal?: AbortSignal): Promise<boolean>;
}

/** What a device asks for, as an access check at the upstream. */
export type AccessCheck = { kind: 'manifest'; reference: string } | { kind: 'blob'; digest: string } | { kind: 'tags' };
