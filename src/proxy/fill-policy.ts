import { chainSources, type BlobSource, type FillPolicy } from '../fetch/index.ts';
import { isSatelliteError } from '../lib/errors.ts';
import { isDiskError } from '../store/index.ts';
import type { ProxyConfig } from './config-schema.ts';
import type { ProxyStore, ProxyUpstream } from './ports.ts';

/** Progress of a proxy fill is made durable this often, so a restart resumes it. */
export const PROXY_CHECKPOINT_BYTES = 4 * 1024 * 1024;

/** Pause before the n-th resume attempt in a row without progress (1-based): 100 ms doubling, at most 2 s. */
export function resumeBackoffMs(attempt: number): number {
  return Math.min(100 * 2 ** Math.max(0, attempt - 1), 2000);
}

/**
 * The proxy's say in a fill it starts: a device waits, so the first request is not retried (a fast
 * 404 lets containerd fail over); a cut is resumed up to proxy.resumeAttempts requests in a row
 * without progress and at most one idle plus one first-byte timeout of silence; a blob that cannot
 * fit is refused before its body is read (the cache is evicted first).
 */
export function proxyPolicy(
  config: Pick<ProxyConfig, 'resumeAttempts' | 'idleTimeoutMs' | 'firstByteTimeoutMs'>,
  store: ProxyStore,
  digest: string,
  written: () => number,
  onResume: () => void,
): FillPolicy {
  return {
    attempts: config.resumeAttempts,
    backoffMs: resumeBackoffMs,
    retryFirst: false,
    silenceMs: config.idleTimeoutMs + config.firstByteTimeoutMs,
    checkpointBytes: PROXY_CHECKPOINT_BYTES,
    cache: true,
    permanent: (err) => isDiskError(err) || (isSatelliteError(err) && ['UPSTREAM_NOT_FOUND', 'UPSTREAM_AUTH'].includes(err.code)),
    async admit(size, kept) {
      const what = `blob ${digest}`;
      try {
        store.admitWrite(size - kept, what);
      } catch (err) {
        if (!isDiskError(err) || store.disk.readOnly) throw err;
        await store.relieve(size - kept);
        store.admitWrite(size - kept, what);
      }
      // Bytes still to write, promised so sync and other fills do not count them as free.
      return store.disk.reserve(() => size - written());
    },
    onResume,
    onCommitted: (size) => store.cacheIndex.recordBlob(digest, size),
  };
}

/** The proxy's sources for one miss: the site's peers (asked under the store's name), then the upstream. */
export function proxySources(peers: BlobSource | undefined, storeRepo: string, upstream: ProxyUpstream): BlobSource {
  const fromUpstream: BlobSource = {
    async open(repo, digest, { offset, signal }) {
      const res = await upstream.fetchBlob(repo, digest, { signal, ...(offset > 0 ? { offset } : {}) });
      return { ...res, origin: { kind: 'upstream', id: 'upstream' } };
    },
  };
  if (!peers) return fromUpstream;
  const atSite: BlobSource = { ...peers, open: (_repo, digest, opts) => peers.open(storeRepo, digest, opts) };
  return chainSources([atSite, fromUpstream]);
}
