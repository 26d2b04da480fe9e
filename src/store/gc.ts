import { durableTransaction, scan } from './index-db.ts';
import { unlinkIfExists } from '../lib/fs-atomic.ts';
import type { StoreContext } from './context.ts';
import { removeBlobRefsInTxn } from './blob-refs.ts';

export interface GcResult {
  manifestsRemoved: number;
  blobsRemoved: number;
  bytesFreed: number;
  linksRemoved: number;
  /** Partial downloads (record and file) nobody wants any more. */
  partialsRemoved: number;
}

/**
 * Mark and sweep. Roots: manifests linked to a repository (tagged or not) and their index children;
 * blob links younger than the grace period (a push in progress); pinned digests (in-flight work).
 * Everything else is swept: manifest records, stale blob links, then blob records and files.
 */
export async function collectGarbage(ctx: StoreContext, graceSeconds = ctx.config.gcGraceSeconds): Promise<GcResult> {
  const result: GcResult = { manifestsRemoved: 0, blobsRemoved: 0, bytesFreed: 0, linksRemoved: 0, partialsRemoved: 0 };
  const liveManifests = markManifests(ctx);
  const liveBlobs = new Set<string>();
  for (const digest of liveManifests) {
    for (const b of ctx.db.manifests.get(digest)?.blobs ?? []) liveBlobs.add(b);
  }

  const graceEdge = Date.now() - graceSeconds * 1000;
  const deadManifests: string[] = [];
  for (const digest of scan(ctx.db.manifests.getKeys())) {
    if (!liveManifests.has(digest) && !ctx.pins.has(digest)) deadManifests.push(digest);
  }
  const staleLinks: Array<[string, string]> = [];
  for (const { key, value } of scan(ctx.db.repoBlobs.getRange())) {
    if (value >= graceEdge) liveBlobs.add(key[1]);
    // A link no manifest of the repository explains is only kept while young.
    else if (!liveBlobs.has(key[1])) staleLinks.push(key);
  }

  await durableTransaction(ctx.db, () => {
    for (const digest of deadManifests) {
      removeBlobRefsInTxn(ctx, digest, ctx.db.manifests.get(digest)?.blobs ?? []);
      ctx.db.manifests.remove(digest);
      ctx.db.manifestData.remove(digest);
      result.manifestsRemoved++;
    }
    for (const key of staleLinks) {
      if (!liveBlobs.has(key[1])) {
        ctx.db.repoBlobs.remove(key);
        result.linksRemoved++;
      }
    }
  });

  const removed = await durableTransaction(ctx.db, () => {
    // Recomputed inside the transaction: links made since marking keep their blobs.
    const linked = new Set<string>();
    for (const key of scan(ctx.db.repoBlobs.getKeys())) linked.add(key[1]);
    const gone: Array<{ digest: string; size: number }> = [];
    for (const { key: digest, value: rec } of scan(ctx.db.blobs.getRange())) {
      if (liveBlobs.has(digest) || linked.has(digest) || ctx.pins.has(digest) || rec.createdAt >= graceEdge) continue;
      ctx.db.blobs.remove(digest);
      gone.push({ digest, size: rec.size });
    }
    return gone;
  });
  for (const { digest, size } of removed) {
    await ctx.digestLocks.run(digest, async () => {
      // Index first, file second: a crash in between leaves an orphan file, never a dangling entry.
      // A commit that re-added the digest meanwhile owns the file again.
      if (ctx.db.blobs.get(digest)) return;
      await unlinkIfExists(ctx.layout.blobPath(digest));
      result.blobsRemoved++;
      result.bytesFreed += size;
    });
  }
  result.partialsRemoved = await sweepPartials(ctx, graceEdge);
  ctx.log.info(result, 'garbage collection finished');
  return result;
}

/**
 * Partial downloads are kept while a download holds them (pinned), while young (a resume after a
 * restart), or while their owner still wants the blob (ctx.keepPartial, e.g. the sync plan);
 * the rest — an abandoned fetch, one a peer asked for and nobody wants now — go, record first.
 */
async function sweepPartials(ctx: StoreContext, graceEdge: number): Promise<number> {
  const gone = await durableTransaction(ctx.db, () => {
    const out: string[] = [];
    for (const { key: digest, value } of ctx.db.partials.getRange()) {
      if (ctx.pins.has(digest) || value.updatedAt >= graceEdge || ctx.keepPartial?.(digest)) continue;
      ctx.db.partials.remove(digest);
      out.push(digest);
    }
    return out;
  });
  for (const digest of gone) await unlinkIfExists(ctx.layout.partialPath(digest));
  return gone.length;
}

/** Manifests reachable from a repository link, with index children. */
export function markManifests(ctx: StoreContext): Set<string> {
  const live = new Set<string>();
  const stack: string[] = [];
  for (const key of scan(ctx.db.repoManifests.getKeys())) stack.push(key[1]);
  while (stack.length > 0) {
    const digest = stack.pop()!;
    if (live.has(digest)) continue;
    live.add(digest);
    for (const child of ctx.db.manifests.get(digest)?.children ?? []) stack.push(child);
  }
  return live;
}
