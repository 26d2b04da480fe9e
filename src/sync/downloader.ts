import type { Logger } from 'pino';
import { Fills, FetchErrorCode, type BlobSource, type Fill, type FillPolicy } from '../fetch/index.ts';
import { isSatelliteError, type SatelliteError } from '../lib/errors.ts';
import type { RateLimiter } from '../lib/rate-limiter.ts';
import { isDiskError, type Store } from '../store/index.ts';
import { SyncErrorCode } from './errors.ts';
import type { UpstreamPort } from './upstream-port.ts';

export interface DownloadDeps {
  store: Store;
  upstream: UpstreamPort;
  log: Logger;
  /** The fills in flight in this process (shared with the proxy): one fetch per digest. */
  fills?: Fills | undefined;
  limiter?: RateLimiter | undefined;
  /** Returns a reason to hold downloads (window closed, cap reached), checked at start and per chunk. */
  gate: (phase: 'start' | 'stream') => SatelliteError | undefined;
  /** Make progress durable every this many bytes. */
  checkpointBytes: number;
  /** Attempts in a row that make no progress before giving up on this blob for this run. */
  attempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface DownloadResult {
  digest: string;
  size: number;
  /** Where this call started: > 0 when a partial download from before was resumed. */
  resumedFrom: number;
  /** Body bytes received from sources by this call (0 when it joined another asker's fetch). */
  bytesReceived: number;
}

/** Exponential backoff with full jitter. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** attempt);
}

/** The upstream port (peers first, when configured) as the fill's source. */
function portSource(upstream: UpstreamPort): BlobSource {
  return {
    async open(repo, digest, { offset, size, signal }) {
      const res = await upstream.fetchBlob(repo, digest, { offset, signal, ...(size === undefined ? {} : { size }) });
      return { ...res, origin: res.origin ?? { kind: 'upstream', id: 'upstream' } };
    },
    reportBad: (digest, origins) => upstream.reportBadSource?.(digest, origins) ?? false,
  };
}

/** Sync's policy for a fill: its windows and caps, its bandwidth limit (WAN only), its retries. */
export function syncPolicy(deps: DownloadDeps): FillPolicy {
  return {
    attempts: deps.attempts,
    backoffMs: (n) => backoffMs(n, deps.backoffBaseMs, deps.backoffMaxMs),
    retryFirst: true,
    checkpointBytes: deps.checkpointBytes,
    permanent: isPermanent,
    held: deps.gate,
    // The bandwidth limit is for the WAN; bytes from a peer at the site are not throttled.
    ...(deps.limiter ? { beforeChunk: async (n, origin, signal) => (origin.kind === 'peer' ? undefined : deps.limiter!.take(n, signal)) } : {}),
  };
}

/**
 * Downloads one blob into the store (src/fetch's Fill: resumed from kept bytes, hashed, verified,
 * committed), or joins the fetch of the same digest already running in this process (a proxy miss,
 * a peer's request) and waits for its verdict; if that one fails, fetches it itself once.
 */
export async function downloadBlob(deps: DownloadDeps, repo: string, want: { digest: string; size: number }, signal: AbortSignal): Promise<DownloadResult> {
  const fills = deps.fills ?? new Fills();
  for (let joinedBefore = false; ; ) {
    const { fill, joined } = fills.fill({
      store: deps.store,
      source: portSource(deps.upstream),
      repo,
      digest: want.digest,
      size: want.size,
      policy: syncPolicy(deps),
      log: deps.log,
      signal,
    });
    try {
      // Our own fill stops with our signal, after its checkpoint: wait for that, so the partial is unpinned.
      if (joined) await waitFor(fill, signal);
      else await fill.result();
    } catch (err) {
      if (joined && !joinedBefore && !signal.aborted && !deps.store.hasBlob(want.digest)) {
        joinedBefore = true;
        deps.log.info({ digest: want.digest, err: (err as Error).message }, 'the fetch this download joined failed; fetching it here');
        continue;
      }
      throw err;
    }
    if (joined) return { digest: want.digest, size: want.size, resumedFrom: 0, bytesReceived: 0 };
    return { digest: want.digest, size: want.size, resumedFrom: fill.resumedFrom, bytesReceived: fill.bytesReceived };
  }
}

/** A joined fill is someone else's: leaving it (our run stopped) does not stop it. */
async function waitFor(fill: Fill, signal: AbortSignal): Promise<void> {
  if (signal.aborted) throw signal.reason;
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    await Promise.race([fill.result(), aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Errors that another attempt cannot fix. */
function isPermanent(err: unknown): boolean {
  return (
    isDiskError(err) ||
    (isSatelliteError(err) && [SyncErrorCode.paused, 'UPSTREAM_NOT_FOUND', 'UPSTREAM_AUTH', FetchErrorCode.sizeMismatch].includes(err.code))
  );
}
