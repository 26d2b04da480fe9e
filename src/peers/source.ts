import type { BlobOrigin, BlobSource, OpenedBlob } from '../fetch/index.ts';

/** What a peer source needs from the site's coordinator (src/peers/peers.ts's Peers). */
export interface PeerFetches {
  fetchFromPeers(repo: string, digest: string, size: number, offset: number, signal: AbortSignal): Promise<OpenedBlob | undefined>;
  fetchPresent(repo: string, digest: string, waitMs: number, signal: AbortSignal): Promise<OpenedBlob | undefined>;
  upstreamRead(digest: string): void;
  reportBadSource(digest: string, origins: BlobOrigin[]): boolean;
}

/**
 * The site's peers as a BlobSource, the one way sync and the proxy reach them.
 * - 'owner' (sync): the blob's owner at the site (waiting while it fetches, asking it to), then
 *   any member holding it, from any offset; needs the blob's size. When the upstream serves the
 *   blob instead, askers at the site are told to wait for this download.
 * - 'present' (the proxy, where a device waits): only members that hold it, or one fetching it
 *   waited for at most waitMs; from byte 0 only, never asking a member to fetch.
 * Bytes that did not verify are counted against the peer that sent them.
 */
export function peerSource(peers: PeerFetches, how: { mode: 'owner' } | { mode: 'present'; waitMs: number }): BlobSource {
  return {
    async open(repo, digest, { offset, size, signal }) {
      if (how.mode === 'present') return offset === 0 ? peers.fetchPresent(repo, digest, how.waitMs, signal) : undefined;
      return size === undefined ? undefined : peers.fetchFromPeers(repo, digest, size, offset, signal);
    },
    reportBad: (digest, origins) => peers.reportBadSource(digest, origins),
    passed(digest) {
      if (how.mode === 'owner') peers.upstreamRead(digest);
    },
  };
}
