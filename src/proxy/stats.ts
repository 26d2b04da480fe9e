import type { SignatureGateStatus } from './signature-gate.ts';

/** Counters of the pull-through cache (the status endpoint shows them; a metrics exporter can read them). */
export interface ProxyCounters {
  manifestHits: number;
  manifestMisses: number;
  /** Tags past their TTL that the upstream confirmed unchanged. */
  revalidations: number;
  blobHits: number;
  blobMisses: number;
  /** Requests that joined a fetch already in flight instead of starting one. */
  fetchesJoined: number;
  fetchesFailed: number;
  /** Cached tags served because the upstream could not be asked. */
  staleServed: number;
  upstreamErrors: number;
  /** Body bytes read from the upstream. */
  upstreamBytes: number;
  /** Upstream blob bodies cut mid-way and continued with Range in the same fill. */
  upstreamResumes: number;
  /** Blob misses filled from a peer of the site (verified), and the bytes peers sent (verified or not). */
  blobsFromPeers: number;
  peerBytes: number;
  evictedManifests: number;
  evictedBlobs: number;
  evictedBytes: number;
  /** Blob bytes served from the cache to clients (not fetched for that request): WAN bytes saved. */
  cacheServedBytes: number;
  /** Access checks of device credentials at the upstream: accepted, refused. */
  deviceChecks: number;
  deviceRefused: number;
  /** Requests in restricted repositories admitted on an earlier confirmation while the upstream was unreachable. */
  deviceOfflineAdmitted: number;
  /** Device token requests relayed to the upstream's token realm (HTTPS proxy, realm on the intercepted host). */
  tokenRelays: number;
}

export function newCounters(): ProxyCounters {
  return {
    manifestHits: 0,
    manifestMisses: 0,
    revalidations: 0,
    blobHits: 0,
    blobMisses: 0,
    fetchesJoined: 0,
    fetchesFailed: 0,
    staleServed: 0,
    upstreamErrors: 0,
    upstreamBytes: 0,
    upstreamResumes: 0,
    blobsFromPeers: 0,
    peerBytes: 0,
    evictedManifests: 0,
    evictedBlobs: 0,
    evictedBytes: 0,
    cacheServedBytes: 0,
    deviceChecks: 0,
    deviceRefused: 0,
    deviceOfflineAdmitted: 0,
    tokenRelays: 0,
  };
}

export interface ProxyStatus extends ProxyCounters {
  enabled: boolean;
  upstream: string | null;
  /** Misses ask the site's peers first (proxy.askPeers with a peers section). */
  askPeers: boolean;
  mirrors: Array<{ namespace: string; url: string; repositoryPrefix: string }>;
  inFlight: number;
  cacheBytes: number;
  cacheQuotaBytes: number | null;
  /** proxy.signaturePolicy: verdicts, refusals and flagged images (docs/trust.md). */
  signaturePolicy: SignatureGateStatus | { mode: 'off' };
}
