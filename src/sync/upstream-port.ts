import type { Readable } from 'node:stream';
import { chainSources, type BlobOrigin, type BlobSource } from '../fetch/index.ts';
import type { ReferrersPage } from '../oci/referrers.ts';

/** What sync needs from an upstream registry client (src/upstream implements it). */
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
  /**
   * One page of the OCI 1.1 referrers API; undefined when the source has none (404: fall back to
   * the referrers tag schema). Optional: a source without it (a bundle's layout) has only tags.
   */
  getReferrers?(repo: string, digest: string, opts?: { artifactType?: string; next?: string }, signal?: AbortSignal): Promise<ReferrersPage | undefined>;
  fetchBlob(
    repo: string,
    digest: string,
    /** size: the blob's size from the manifest, when known (peers use it to ask for the blob). */
    opts?: { offset?: number; signal?: AbortSignal; size?: number },
  ): Promise<{ status: 200 | 206; start: number; total?: number; body: Readable; origin?: BlobOrigin }>;
  /**
   * The bytes of `digest` that `origins` delivered did not hash to it (they were discarded). Returns
   * true when another attempt may reach a different source, so the download should start over.
   */
  reportBadSource?(digest: string, origins: BlobOrigin[]): boolean;
  close(): Promise<void>;
}

/** The upstream client as the last source of a chain: it answers or throws. */
function upstreamSource(inner: UpstreamPort): BlobSource {
  return {
    async open(repo, digest, { offset, signal, size }) {
      const res = await inner.fetchBlob(repo, digest, { offset, signal, ...(size === undefined ? {} : { size }) });
      return { ...res, origin: { kind: 'upstream', id: 'upstream' } };
    },
  };
}

/**
 * The upstream client with other sources (the site's peers) asked first for blobs; manifests still
 * come from the upstream (they are small and name what to verify against).
 */
export function withSources(inner: UpstreamPort, sources: BlobSource[]): UpstreamPort {
  if (sources.length === 0) return inner;
  const chain = chainSources([...sources, upstreamSource(inner)]);
  return {
    ping: (signal) => inner.ping(signal),
    getManifest: (repo, reference, signal) => inner.getManifest(repo, reference, signal),
    ...(inner.prepare ? { prepare: (repositories: readonly string[]) => inner.prepare!(repositories) } : {}),
    ...(inner.getManifestIfChanged
      ? { getManifestIfChanged: (repo: string, reference: string, known: string, signal?: AbortSignal) => inner.getManifestIfChanged!(repo, reference, known, signal) }
      : {}),
    ...(inner.getReferrers
      ? { getReferrers: (repo: string, digest: string, opts?: { artifactType?: string; next?: string }, signal?: AbortSignal) => inner.getReferrers!(repo, digest, opts, signal) }
      : {}),
    async fetchBlob(repo, digest, opts = {}) {
      const got = await chain.open(repo, digest, { offset: opts.offset ?? 0, size: opts.size, signal: opts.signal ?? new AbortController().signal });
      // The upstream source never answers undefined.
      if (!got) throw new Error(`no source answered for ${digest}`);
      return got;
    },
    reportBadSource: (digest, origins) => chain.reportBad(digest, origins),
    close: () => inner.close(),
  };
}
