import type { ReportSources } from '../control/index.ts';
import { referenceMatcher } from '../oci/reference-set.ts';
import { ServedBytes } from '../observability/served-bytes.ts';
import { StrayPulls } from '../observability/stray-pulls.ts';
import type { PeerStatusView } from '../observability/index.ts';
import type { DesiredState } from '../protocol/index.ts';
import type { ProxyStatus } from '../proxy/index.ts';
import type { FinishedRequest } from '../registry/index.ts';
import type { RunTotalsSnapshot } from '../sync/index.ts';

/** Distinct references the stray-pull counter keeps (about 100 KiB at most). */
const STRAY_KEYS = 1000;

/**
 * The counters a state report carries that no domain keeps for itself (bytes served to devices,
 * pulls by reference), fed by the registry's finished-request hook, plus the reads of those the
 * domains do keep (sync totals, proxy, peers). Only built when there is a control plane.
 */
export function reportSources(src: {
  desired: () => DesiredState | undefined;
  syncTotals: { snapshot(): RunTotalsSnapshot };
  proxy?: { status(): ProxyStatus } | undefined;
  peers?: { status(): PeerStatusView } | undefined;
}): { sources: ReportSources; observe: (r: FinishedRequest) => void } {
  const served = new ServedBytes();
  let cached: { doc: DesiredState; matches: (repository: string, reference: string) => boolean } | undefined;
  const isDesired = (repository: string, reference: string): boolean => {
    const doc = src.desired();
    if (!doc) return false;
    if (cached?.doc !== doc) {
      const refs = doc.images.flatMap((i) => [...(i.tags ?? []), ...(i.digests ?? [])].map((reference) => ({ repository: i.repository, reference })));
      cached = { doc, matches: referenceMatcher(refs) };
    }
    return cached.matches(repository, reference);
  };
  const strays = new StrayPulls({ maxKeys: STRAY_KEYS, isDesired });
  const { proxy, peers } = src;
  return {
    observe: (r) => {
      served.observe(r);
      strays.observe(r);
    },
    sources: {
      traffic: () => {
        const p = peers?.status();
        return {
          bytesFromUpstream: src.syncTotals.snapshot().bytesFromUpstream + (proxy?.status().upstreamBytes ?? 0),
          bytesServed: served.total,
          bytesFromPeers: p ? p.peers.reduce((n, x) => n + x.bytesReceived, 0) : 0,
          bytesToPeers: p?.bytesServed ?? 0,
        };
      },
      proxy: proxy
        ? () => {
            const s = proxy.status();
            return { hits: s.manifestHits + s.blobHits, misses: s.manifestMisses + s.blobMisses, bytesFromUpstream: s.upstreamBytes, bytesServedFromCache: s.cacheServedBytes };
          }
        : undefined,
      strayPulls: (n) => strays.top(n),
    },
  };
}
