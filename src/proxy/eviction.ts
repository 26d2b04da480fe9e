import type { Logger } from 'pino';
import { isSatelliteError } from '../lib/errors.ts';
import type { ProxyStore } from './ports.ts';
import type { ProxyCounters } from './stats.ts';

export interface EvictionDeps {
  store: ProxyStore;
  log: Logger;
  counters: ProxyCounters;
  quotaBytes: number;
  /** Manifest digests the desired state holds (sync): never evicted, nor their blobs. */
  pinned: () => Set<string>;
}

type Unit = { kind: 'manifest'; repo: string; digest: string; lastAccess: number } | { kind: 'blob'; digest: string; lastAccess: number };

/**
 * Least recently used first, until the cached blobs fit the quota: a cached manifest (with its
 * cached index children) is deleted from its repository with its proxy tags, then those of its
 * blobs nothing else references are removed at once. Blobs cached without any cached manifest
 * (pulled by digest alone) are units of their own. Pinned content and anything still referenced
 * by another manifest (sync's, a push's) stays.
 */
export async function evictToQuota(d: EvictionDeps): Promise<{ bytesFreed: number; manifests: number; blobs: number }> {
  const cache = d.store.cacheIndex;
  await cache.flush();
  const out = { bytesFreed: 0, manifests: 0, blobs: 0 };
  if (cache.bytes() <= d.quotaBytes) return out;
  const pinned = d.pinned();
  for (const digest of [...pinned]) for (const child of d.store.childrenOf(digest)) pinned.add(child);
  await adoptPinned(d, pinned);
  let used = cache.bytes();
  if (used <= d.quotaBytes) return out;

  const referenced = new Set<string>();
  const units: Unit[] = [];
  for (const m of cache.manifests()) {
    const found = d.store.getManifest(m.repo, m.digest);
    for (const b of found?.record.blobs ?? []) referenced.add(b);
    if (!pinned.has(m.digest)) units.push({ kind: 'manifest', repo: m.repo, digest: m.digest, lastAccess: m.lastAccess });
  }
  for (const b of cache.blobs()) if (!referenced.has(b.digest)) units.push({ kind: 'blob', digest: b.digest, lastAccess: b.lastAccess });
  units.sort((a, b) => a.lastAccess - b.lastAccess);

  for (const unit of units) {
    if (used <= d.quotaBytes) break;
    let blobs: string[];
    if (unit.kind === 'manifest') {
      const dropped = await dropManifest(d, unit.repo, unit.digest, pinned);
      if (dropped === undefined) continue;
      out.manifests += dropped.manifests;
      blobs = dropped.blobs;
    } else {
      blobs = [unit.digest];
    }
    const removed = await d.store.removeUnreferencedBlobs(blobs.filter((b) => cache.isCachedBlob(b)));
    await cache.forgetBlobs(removed.removed);
    used -= removed.bytesFreed;
    out.bytesFreed += removed.bytesFreed;
    out.blobs += removed.removed.length;
  }
  d.counters.evictedManifests += out.manifests;
  d.counters.evictedBlobs += out.blobs;
  d.counters.evictedBytes += out.bytesFreed;
  const level = used > d.quotaBytes ? 'warn' : 'info';
  d.log[level]({ ...out, cacheBytes: used, quotaBytes: d.quotaBytes }, used > d.quotaBytes ? 'cache over quota after eviction (the rest is pinned or in use)' : 'cache evicted to quota');
  return out;
}

/**
 * Under disk pressure (a download or push needs room): evicts at least `bytes` of the cache, least
 * recently used first; pinned (desired) content stays. Returns the bytes freed.
 */
export async function evictBytes(d: Omit<EvictionDeps, 'quotaBytes'>, bytes: number): Promise<number> {
  const cache = d.store.cacheIndex;
  await cache.flush();
  const quotaBytes = Math.max(0, cache.bytes() - bytes);
  return (await evictToQuota({ ...d, quotaBytes })).bytesFreed;
}

/** Deletes a cached manifest (an index first, then its cached children); undefined when it must stay. */
async function dropManifest(d: EvictionDeps, repo: string, digest: string, pinned: Set<string>): Promise<{ manifests: number; blobs: string[] } | undefined> {
  const cache = d.store.cacheIndex;
  const found = d.store.getManifest(repo, digest);
  if (!found) {
    await cache.forgetManifest(repo, digest);
    return { manifests: 0, blobs: [] };
  }
  try {
    await d.store.deleteManifest(repo, digest);
  } catch (err) {
    // Listed by an index of the repository: it goes when that index goes.
    if (isSatelliteError(err, 'MANIFEST_REFERENCED')) return undefined;
    if (!isSatelliteError(err, 'MANIFEST_UNKNOWN')) throw err;
  }
  await cache.forgetManifest(repo, digest);
  const out = { manifests: 1, blobs: [...found.record.blobs] };
  for (const child of found.record.children) {
    if (pinned.has(child) || !cache.isCachedManifest(repo, child)) continue;
    const sub = await dropManifest(d, repo, child, pinned);
    if (sub) {
      out.manifests += sub.manifests;
      out.blobs.push(...sub.blobs);
    }
  }
  return out;
}

/**
 * Content the desired state now holds is sync's, not the cache's: its records are dropped, so it
 * neither counts against the quota nor makes the cache evict other images to make room for it.
 */
async function adoptPinned(d: EvictionDeps, pinned: Set<string>): Promise<void> {
  const cache = d.store.cacheIndex;
  const held = new Set<string>();
  for (const m of cache.manifests()) {
    if (!pinned.has(m.digest)) continue;
    for (const b of d.store.getManifest(m.repo, m.digest)?.record.blobs ?? []) held.add(b);
    await cache.forgetManifest(m.repo, m.digest);
  }
  // Layers a held image shares with cached ones are held too.
  for (const digest of pinned) for (const b of d.store.blobsOf(digest)) held.add(b);
  await cache.forgetBlobs([...held].filter((b) => cache.isCachedBlob(b)));
}
