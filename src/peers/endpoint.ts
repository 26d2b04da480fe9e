import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isRepositoryName } from '../oci/names.ts';
import type { PeerEndpoint } from '../registry/index.ts';
import type { Peers } from './peers.ts';
import { PEER_ID_HEADER } from './wire.ts';

/** The registry's hook for /_satellite/peer/: token check, state long-poll, served-bytes counters. */
export function peerEndpoint(peers: Peers, token: string | undefined): PeerEndpoint {
  const expected = token === undefined ? undefined : Buffer.from(`Bearer ${token}`);
  const urlOf = (name: string) => peers.membership.peers().find((m) => m.key === name)?.url;
  return {
    authorize(req: IncomingMessage): boolean {
      if (!expected) return true;
      const got = Buffer.from(req.headers.authorization ?? '');
      return got.length === expected.length && timingSafeEqual(got, expected);
    },
    state(digest: string, url: URL, signal: AbortSignal) {
      const repo = url.searchParams.get('repo') ?? undefined;
      const sizeText = url.searchParams.get('size');
      const waitText = url.searchParams.get('wait');
      const size = sizeText !== null && /^\d{1,15}$/.test(sizeText) ? Number(sizeText) : undefined;
      const waitMs = waitText !== null && /^\d{1,7}$/.test(waitText) ? Number(waitText) : 0;
      return peers.waitState(
        digest,
        { repo: repo !== undefined && isRepositoryName(repo) ? repo : undefined, size, fetch: url.searchParams.get('fetch') === '1', waitMs },
        signal,
      );
    },
    served(req: IncomingMessage, bytes: number): void {
      const name = req.headers[PEER_ID_HEADER];
      peers.stats.served(typeof name === 'string' ? name.slice(0, 128) : undefined, bytes, urlOf);
    },
  };
}
