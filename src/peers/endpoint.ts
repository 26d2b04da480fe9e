import type { IncomingMessage } from 'node:http';
import type { PeerEndpoint } from '../registry/index.ts';
import type { Peers } from './peers.ts';
import { PEER_ID_HEADER } from './wire.ts';

/**
 * The registry's hook for /_satellite/peer/: secret check (the configured token or the site
 * secret; nothing passes without one), scope check, state long-poll, served-bytes counters.
 */
export function peerEndpoint(peers: Peers): PeerEndpoint {
  const urlOf = (name: string) => peers.membership.peers().find((m) => m.key === name)?.url;
  return {
    authorize(req: IncomingMessage): boolean {
      return peers.credentials.accepts(req.headers.authorization);
    },
    mayRead(digest: string): boolean {
      return peers.mayShare(digest);
    },
    state(digest: string, url: URL, signal: AbortSignal) {
      // `repo` is not read: a fetch for a member uses the repository our own manifest names.
      const sizeText = url.searchParams.get('size');
      const waitText = url.searchParams.get('wait');
      const size = sizeText !== null && /^\d{1,15}$/.test(sizeText) ? Number(sizeText) : undefined;
      const waitMs = waitText !== null && /^\d{1,7}$/.test(waitText) ? Number(waitText) : 0;
      return peers.waitState(
        digest,
        { size, fetch: url.searchParams.get('fetch') === '1', waitMs },
        signal,
      );
    },
    served(req: IncomingMessage, bytes: number): void {
      const name = req.headers[PEER_ID_HEADER];
      peers.stats.served(typeof name === 'string' ? name.slice(0, 128) : undefined, bytes, urlOf);
    },
  };
}
