import type { Logger } from 'pino';
import type { SatelliteConfig } from '../config/index.ts';
import type { Control } from '../control/index.ts';
import { SatelliteError } from '../lib/errors.ts';
import { loadPeerToken, PeerCredentials, peerEndpoint, Peers } from '../peers/index.ts';
import type { PeerEndpoint } from '../registry/index.ts';
import type { Store } from '../store/index.ts';

// Loaded with this module only when `peers` is configured (src/daemon/satellite.ts).
export { peerSource } from '../peers/index.ts';

/** Blob sharing at the site, when `peers` is configured: the coordinator and its registry endpoint. */
export async function startPeers(
  config: SatelliteConfig,
  control: Control | undefined,
  store: Store,
  log: Logger,
): Promise<{ peers: Peers; endpoint: PeerEndpoint } | undefined> {
  const c = config.peers;
  if (!c) return undefined;
  const selfKey = c.id ?? control?.identity.satelliteId ?? c.advertiseUrl;
  if (selfKey === undefined) {
    // Without a name of its own a satellite cannot take its share of the site's blobs.
    throw new SatelliteError('CONFIG_INVALID', 'invalid config:\n  /peers: needs id or advertiseUrl (or a control section) so the site can rank this satellite');
  }
  if (control && c.fromGroundControl && c.advertiseUrl === undefined) {
    throw new SatelliteError('CONFIG_INVALID', 'invalid config:\n  /peers/advertiseUrl: required with control: Ground Control tells the site where to reach this satellite');
  }
  const token = await loadPeerToken(c);
  // The peer endpoints read blobs past registry.auth and can start upstream fetches: never open.
  // Only a satellite whose members all come from Ground Control may go without a token (it gets the site secret).
  const siteSecretOnly = control !== undefined && c.fromGroundControl && (c.static ?? []).length === 0;
  if (token === undefined && !siteSecretOnly) {
    throw new SatelliteError(
      'CONFIG_INVALID',
      `invalid config:\n  /peers/token: required (or peers.tokenFile): the site's shared secret; without Ground Control membership the peer endpoints would be open to anyone who reaches the port`,
    );
  }
  const peers = new Peers({
    config: c,
    log,
    credentials: new PeerCredentials({ configured: token, graceMs: c.siteSecretGraceMs }),
    selfKey,
    local: {
      blobSize: (digest) => store.blobSize(digest),
      partialOffset: (digest) => store.partialBytes(digest),
      // A blob fetched with a device's credentials (docs/proxy.md, restricted repositories) is never
      // shared by digest: the member's devices were not authorised for it by the upstream.
      referenced: (digest) => store.isBlobReferenced(digest) && !store.cacheIndex.isRestrictedBlob(digest),
    },
  });
  log.info({ self: selfKey, members: peers.membership.peers().map((m) => m.key), auth: token === undefined ? 'site secret from Ground Control' : 'token' }, 'peer sharing on');
  return { peers, endpoint: peerEndpoint(peers) };
}
