import { Transform } from 'node:stream';
import type { BlobSource, UpstreamPort } from '../sync/upstream-port.ts';
import type { Peers } from './peers.ts';

/**
 * The sync engine's UpstreamPort with peers in front: manifests still come from the upstream
 * (they are small and name what to verify against); blobs come from a peer of the site when one
 * has them (or its owner fetches them), else from the upstream. Bytes from a peer are verified by
 * the downloader like any others; a mismatch is reported back here and that peer is not asked
 * for that digest again.
 */
export class PeerAwarePort implements UpstreamPort {
  readonly #inner: UpstreamPort;
  readonly #peers: Peers;

  constructor(inner: UpstreamPort, peers: Peers) {
    this.#inner = inner;
    this.#peers = peers;
  }

  ping(signal?: AbortSignal): Promise<void> {
    return this.#inner.ping(signal);
  }

  getManifest(repo: string, reference: string, signal?: AbortSignal) {
    return this.#inner.getManifest(repo, reference, signal);
  }

  async prepare(repositories: readonly string[]): Promise<void> {
    await this.#inner.prepare?.(repositories);
  }

  getManifestIfChanged(repo: string, reference: string, known: string, signal?: AbortSignal) {
    if (!this.#inner.getManifestIfChanged) return this.#inner.getManifest(repo, reference, signal);
    return this.#inner.getManifestIfChanged(repo, reference, known, signal);
  }

  async fetchBlob(repo: string, digest: string, opts: { offset?: number; signal?: AbortSignal; size?: number } = {}) {
    const offset = opts.offset ?? 0;
    const signal = opts.signal ?? new AbortController().signal;
    if (opts.size !== undefined) {
      const fromPeer = await this.#peers.fetchFromPeers(repo, digest, opts.size, offset, signal);
      if (fromPeer) return fromPeer;
    }
    // Until this download ends, askers at the site are told "fetching" and wait for us.
    this.#peers.upstreamRead(digest);
    const res = await this.#inner.fetchBlob(repo, digest, opts);
    return { ...res, source: { kind: 'upstream', id: 'upstream' } as BlobSource };
  }

  reportBadSource(digest: string, sources: BlobSource[]): boolean {
    return this.#peers.reportBadSource(digest, sources);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/**
 * Counts a peer's body bytes as they pass and refuses more than the blob has; on an error the
 * peer is marked failed so the next attempt (resuming from the bytes written) goes elsewhere.
 */
export function countingBody(limit: number, onBytes: (n: number) => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) {
        cb(new Error(`peer sent more than the ${limit} bytes asked for`));
        return;
      }
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}
