import type { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Store } from '../store/index.ts';
import type { BufferPool } from '../lib/buffer-pool.ts';

/** Load shedding under memory pressure (src/daemon/memory): the registry asks before each new blob stream. */
export interface BlobShedder {
  /** Retry-After seconds when a new blob stream must wait now (counted as shed), else undefined. */
  shedBlobStream(): number | undefined;
}

export interface RegistryLimits {
  maxManifestBytes: number;
  /** Open upload sessions in total and per remote address (429 beyond). */
  maxUploadSessions: number;
  maxUploadSessionsPerClient: number;
}

/** The store operations the registry needs: nothing about LMDB or files. */
/** What a handler tells the server's finished-request hook. */
export interface RequestStats {
  bytes?: number;
  manifest?: { repository: string; reference: string };
}

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
  | 'countUploads'
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
  | 'pulls'
>;

/** A blob the store lacks, being fetched by a pull-through source. */
export interface ProxiedBlob {
  /** Full size when the upstream said; undefined: streamed without Content-Length and without ranges. */
  size: number | undefined;
  /**
   * Writes bytes [start, end] (end inclusive; undefined = to the end) through write(), which
   * resolves once the socket took the chunk. The final byte is held back until the whole blob has
   * verified, so a rejection (bad digest, cut fetch) always leaves the response incomplete.
   */
  stream(start: number, end: number | undefined, write: (chunk: Buffer) => Promise<void>, signal: AbortSignal): Promise<number>;
  /** Call once done with it (the fetch itself goes on for others and for the cache). */
  release(): void;
}

/**
 * A device's own credentials for the upstream, present on requests whose Authorization the proxy
 * forwards (HTTPS proxy route by default); `authorization` undefined when the device sent none.
 * Never logged, never stored.
 */
export interface DeviceCredentials {
  authorization: string | undefined;
}

/** What a request reads, as the upstream would check it (manifest reference, blob digest, or the tag list). */
export type ReadTarget = { kind: 'manifest'; reference: string } | { kind: 'blob'; digest: string } | { kind: 'tags' };

/**
 * What the registry asks on a miss (the pull-through proxy implements it; the registry knows
 * nothing else about it). Errors it throws carry registry codes (MANIFEST_UNKNOWN, BLOB_UNKNOWN,
 * TOOMANYREQUESTS) and are answered as such.
 */
export interface MissHandler {
  /** The repository a pull request means in the store (a mirror's content lives under a prefix). */
  storeName(name: string, ns: string | undefined): string;
  /**
   * Brings the store up to date for a manifest reference before it is read: fetches a miss,
   * revalidates a cached tag past its TTL (keeping the cached one when the upstream is down).
   */
  prepareManifest(repo: string, reference: string, opts: { ns: string | undefined; signal: AbortSignal; device?: DeviceCredentials | undefined }): Promise<void>;
  /** A blob missing from the repository: 'stored' when it is now in the store (re-read it), else the fetch to stream. */
  openBlob(repo: string, digest: string, opts: { ns: string | undefined; signal: AbortSignal; device?: DeviceCredentials | undefined }): Promise<ProxiedBlob | 'stored'>;
  /** Whether a request's Authorization is forwarded upstream as the device's own (`device` in the context). */
  forwardsCredentials(viaHttpsProxy: boolean): boolean;
  /**
   * Before a repository is read: throws UNAUTHORIZED (with a `challenge` for WWW-Authenticate)
   * when its content is only for requests the upstream authorises and this one is not.
   */
  guard(repo: string, ns: string | undefined, what: ReadTarget, opts: { device: DeviceCredentials | undefined; signal: AbortSignal }): Promise<void>;
  /** The challenge for a device's credential-less `GET /v2/` (the upstream's), else undefined. */
  baseChallenge(ns: string | undefined): Promise<string | undefined>;
  /**
   * A device's GET through the HTTPS proxy at `pathname` on the intercepted host `ns`: the
   * upstream token realm's answer when that is the realm's path (relayed, never cached), else
   * undefined.
   */
  relayToken(ns: string, pathname: string, query: URLSearchParams, authorization: string | undefined, signal: AbortSignal): Promise<{ status: number; headers: Record<string, string>; body: Readable } | undefined>;
  /** A blob served from the store (cheap: access times for LRU eviction, hit counters). */
  noteBlobHit(repo: string, digest: string): void;
  /** Body bytes of a blob sent from the store (cached blobs count as WAN bytes saved). */
  noteBlobServed(digest: string, bytes: number): void;
}

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Repository name, validated. */
  name: string;
  /** Tag, digest or upload id from the path, unvalidated. */
  ref: string;
  store: RegistryStore;
  /** The remote address (what per-client limits count by). */
  client: string;
  limits: RegistryLimits;
  log: Logger;
  /** Aborted when the client goes away before the response is complete. */
  signal: AbortSignal;
  /** Buffers for streaming blobs. */
  pool: BufferPool;
  /** Pull-through source for misses, when proxy mode is on. */
  proxy: MissHandler | undefined;
  /**
   * Body bytes a streaming handler sent (for the request log), and the manifest a GET/HEAD asked
   * for as the store names it (after the proxy's namespace mapping), for the pull counters.
   */
  stats: RequestStats;
  /** The device's own upstream credentials, when forwarded for this request. */
  device: DeviceCredentials | undefined;
}

export type Handler = (ctx: RequestContext) => Promise<void>;
