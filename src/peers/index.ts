export { Peers, type FetchOnRequest, type LocalBlobs, type LocalSync } from './peers.ts';
export { peerEndpoint } from './endpoint.ts';
export { peersConfigSchema, type PeersConfig, type PeerEntry } from './config-schema.ts';
export { PeerErrorCode } from './errors.ts';
export { rank, normalizeUrl } from './members.ts';
export { loadPeerToken, PeerCredentials } from './token.ts';
export { peerSource, type PeerFetches } from './source.ts';
