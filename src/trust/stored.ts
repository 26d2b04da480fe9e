import type { Readable } from 'node:stream';
import { SatelliteError } from '../lib/errors.ts';
import type { ReferrersPage } from '../oci/referrers.ts';
import type { Store } from '../store/index.ts';
import type { UpstreamPort } from '../sync/upstream-port.ts';

/** What reading the store like a registry takes. */
export type StoreReads = Pick<Store, 'getManifest' | 'listReferrers' | 'blobSize' | 'openBlob' | 'pin'>;

/**
 * The satellite's own store read like a registry (UpstreamPort): `satellite bundle export` writes
 * from it exactly what `groundcontrol bundle create` writes, and a signature re-check (a key
 * rotation, a restart) reads the kept signatures from it with the WAN down. Absent content answers
 * as an upstream's 404 does (UPSTREAM_NOT_FOUND). Blobs stream from their files (pinned against GC
 * while read), never buffered. With `repository`, every request reads that store repository
 * (the proxy keeps a mirror's images under a prefixed name; the check asks with the upstream's).
 */
export class StoreSource implements UpstreamPort {
  readonly #store: StoreReads;
  readonly #repository: string | undefined;

  constructor(store: StoreReads, repository?: string) {
    this.#store = store;
    this.#repository = repository;
  }

  async ping(): Promise<void> {}

  async getManifest(repo: string, reference: string): Promise<{ digest: string; mediaType: string; body: Buffer }> {
    const name = this.#repository ?? repo;
    const m = this.#store.getManifest(name, reference);
    if (!m) throw new SatelliteError('UPSTREAM_NOT_FOUND', `${name}:${reference} is not in this satellite's store`);
    return { digest: m.digest, mediaType: m.record.mediaType, body: m.content };
  }

  /** The referrers the store indexed for `digest` (signatures stored by digest), as one page of the referrers API. */
  async getReferrers(repo: string, digest: string, opts: { artifactType?: string } = {}): Promise<ReferrersPage | undefined> {
    const manifests = this.#store.listReferrers(this.#repository ?? repo, digest, opts.artifactType).map((r) => ({
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      ...(r.artifactType ? { artifactType: r.artifactType } : {}),
    }));
    return { manifests, malformed: 0, filtered: opts.artifactType !== undefined };
  }

  async fetchBlob(_repo: string, digest: string, opts: { offset?: number } = {}): Promise<{ status: 200 | 206; start: number; total: number; body: Readable }> {
    const size = this.#store.blobSize(digest);
    if (size === undefined) throw new SatelliteError('UPSTREAM_NOT_FOUND', `blob ${digest} is not in this satellite's store`);
    const start = opts.offset ?? 0;
    const unpin = this.#store.pin(digest);
    const body = size === 0 ? this.#store.openBlob(digest) : this.#store.openBlob(digest, { start, end: size - 1 });
    body.once('close', unpin);
    return { status: start > 0 ? 206 : 200, start, total: size, body };
  }

  async close(): Promise<void> {}
}

/** The signatures kept in the store beside an image (replicateSignatures), read like the upstream's. */
export function storedSignatures(store: StoreReads, storeRepo: string): StoreSource {
  return new StoreSource(store, storeRepo);
}
