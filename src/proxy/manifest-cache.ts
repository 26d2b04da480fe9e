import type { Logger } from 'pino';
import { isDigest } from '../lib/digest.ts';
import { isSatelliteError } from '../lib/errors.ts';
import { isSignatureRefusal, ProxyErrorCode, proxyError } from './errors.ts';
import type { SignatureGate } from './signature-gate.ts';
import type { ProxyStore, ProxyUpstream } from './ports.ts';
import type { ProxyCounters } from './stats.ts';

export interface ManifestCacheDeps {
  store: ProxyStore;
  upstream: ProxyUpstream;
  log: Logger;
  counters: ProxyCounters;
  tagTtlMs: number;
  /** Claims an upstream fetch slot (throws TOOMANYREQUESTS when none is free); returns its release. */
  slot: () => () => void;
  /** Called after something new was cached (eviction check). */
  onCached: () => void;
  /** The signature policy, when on: a fetched manifest it refuses is never stored. */
  gate?: SignatureGate | undefined;
}

/**
 * Manifests and tags through the upstream. Digests are immutable: fetched once. A tag the proxy
 * resolved is served from the store for tagTtl, then revalidated with a HEAD; when the upstream
 * cannot be reached the cached tag keeps being served. A tag the proxy did not put there (sync,
 * a push) is local content and never asked about upstream.
 */
export class ManifestCache {
  readonly #d: ManifestCacheDeps;
  readonly #inFlight = new Map<string, Promise<void>>();

  constructor(deps: ManifestCacheDeps) {
    this.#d = deps;
  }

  /**
   * repo: the repository in the store; upstreamRepo: its name at the upstream. `via`: a device's
   * view of the upstream (restricted repositories), whose fetches are shared only under its key.
   */
  async prepare(repo: string, upstreamRepo: string, reference: string, signal: AbortSignal, via?: { upstream: ProxyUpstream; key: string }): Promise<void> {
    const { store, counters } = this.#d;
    const cache = store.cacheIndex;
    const local = store.getManifest(repo, reference);
    if (isDigest(reference)) {
      if (local) {
        counters.manifestHits++;
        if (cache.isCachedManifest(repo, local.digest)) cache.touchManifest(repo, local.digest);
        return;
      }
    } else if (local) {
      const rec = cache.getTag(repo, reference);
      if (!rec || rec.digest !== local.digest) return; // local content (sync or push) is authoritative
      cache.touchManifest(repo, local.digest);
      if (Date.now() - rec.checkedAt < this.#d.tagTtlMs) {
        counters.manifestHits++;
        return;
      }
    }
    const key = via ? `${repo}\0${reference}\0${via.key}` : `${repo}\0${reference}`;
    let job = this.#inFlight.get(key);
    if (!job) {
      job = this.#fetch(repo, upstreamRepo, reference, local?.digest, via?.upstream).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, job);
    }
    // One fetch per reference, whoever asked first; a client leaving does not cancel it.
    await abortable(job, signal);
  }

  async #fetch(repo: string, upstreamRepo: string, reference: string, cachedDigest: string | undefined, device: ProxyUpstream | undefined): Promise<void> {
    const { store, log, counters } = this.#d;
    const upstream = device ?? this.#d.upstream;
    const cache = store.cacheIndex;
    let release: (() => void) | undefined;
    try {
      release = this.#d.slot();
      if (cachedDigest !== undefined) {
        // A tag past its TTL: a HEAD says whether it moved.
        const head = await upstream.resolveTag(upstreamRepo, reference);
        if (head.digest === cachedDigest) {
          await cache.putTag(repo, reference, cachedDigest);
          counters.revalidations++;
          return;
        }
        log.info({ repo, tag: reference, from: cachedDigest, to: head.digest }, 'tag moved upstream');
      }
      counters.manifestMisses++;
      const m = await upstream.getManifest(upstreamRepo, reference);
      // Checked before it is stored: a refused image is neither served nor cached (403 DENIED).
      const signatures = await this.#d.gate?.fetched(repo, upstreamRepo, m, upstream);
      await store.putManifest(repo, reference, m.body, m.mediaType, { allowMissingChildren: true, allowMissingBlobs: true });
      await cache.recordManifest(repo, m.digest, m.body.length);
      if (!isDigest(reference)) await cache.putTag(repo, reference, m.digest);
      await this.#d.gate?.keep(repo, signatures);
      log.debug({ repo, reference, digest: m.digest }, 'manifest cached from upstream');
      this.#d.onCached();
    } catch (err) {
      if (isSignatureRefusal(err)) throw err;
      if (isSatelliteError(err, 'UPSTREAM_NOT_FOUND')) {
        if (cachedDigest !== undefined) {
          // The tag is gone upstream: so is our copy of the mapping (the manifest ages out by LRU).
          await store.deleteTag(repo, reference).catch(() => undefined);
          await cache.removeTag(repo, reference);
          log.info({ repo, tag: reference }, 'tag removed upstream; dropped');
        }
        throw proxyError(ProxyErrorCode.manifestUnknown, `manifest ${reference} not found in ${repo} (upstream: not found)`);
      }
      if (isSatelliteError(err, ProxyErrorCode.busy) && cachedDigest === undefined) throw err;
      // Refused credentials are an answer, not an outage: a device's never get stale content, and the
      // satellite's own let the proxy try the device's (or say 404 as before).
      if (isSatelliteError(err, 'UPSTREAM_AUTH') && (device !== undefined || cachedDigest === undefined)) {
        counters.upstreamErrors++;
        throw proxyError(ProxyErrorCode.refused, `manifest ${reference} of ${repo}: the upstream refused the credentials (${(err as Error).message})`);
      }
      counters.upstreamErrors++;
      if (cachedDigest !== undefined) {
        counters.staleServed++;
        log.warn({ repo, tag: reference, digest: cachedDigest, err: (err as Error).message }, 'upstream unavailable; serving cached tag');
        return;
      }
      log.info({ repo, reference, err: (err as Error).message }, 'manifest miss and upstream unavailable');
      throw proxyError(ProxyErrorCode.manifestUnknown, `manifest ${reference} not cached in ${repo} and the upstream failed: ${(err as Error).message}`);
    } finally {
      release?.();
    }
  }
}

/** Waits for job unless signal fires first (the job goes on). */
export function abortable<T>(job: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('client went away'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('client went away'));
    signal.addEventListener('abort', onAbort, { once: true });
    job.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}
