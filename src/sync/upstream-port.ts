import type { Readable } from 'node:stream';

/** Where a blob response came from: the upstream itself, or a peer (src/peers) that had the bytes. */
export interface BlobSource {
  kind: 'upstream' | 'peer';
  id: string;
}

/** What sync needs from an upstream registry client (src/upstream implements it; src/peers wraps it). */
export interface UpstreamPort {
  ping(signal?: AbortSignal): Promise<void>;
  getManifest(repo: string, reference: string, signal?: AbortSignal): Promise<{ digest: string; mediaType: string; body: Buffer }>;
  /** Before planning: lets the client batch what it can for these repositories (token scopes). */
  prepare?(repositories: readonly string[]): Promise<void>;
  /**
   * The manifest unless it is still `known` (undefined then): one conditional request, so a plan
   * reads an unchanged manifest locally. Optional: without it, plans GET every tag.
   */
  getManifestIfChanged?(
    repo: string,
    reference: string,
    known: string,
    signal?: AbortSignal,
  ): Promise<{ digest: string; mediaType: string; body: Buffer } | undefined>;
  fetchBlob(
    repo: string,
    digest: string,
    /** size: the blob's size from the manifest, when known (peers use it to ask for the blob). */
    opts?: { offset?: number; signal?: AbortSignal; size?: number },
  ): Promise<{ status: 200 | 206; start: number; total?: number; body: Readable; source?: BlobSource }>;
  /**
   * The bytes of `digest` that `sources` delivered did not hash to it (they were discarded). Returns
   * true when another attempt may reach a different source, so the download should start over.
   */
  reportBadSource?(digest: string, sources: BlobSource[]): boolean;
  close(): Promise<void>;
}
