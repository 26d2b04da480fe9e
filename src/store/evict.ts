import { unlinkIfExists } from '../lib/fs-atomic.ts';
import type { StoreContext } from './context.ts';
import { markManifests } from './gc.ts';
import { durableTransaction, scan } from './index-db.ts';

/**
 * Removes the given blobs at once (no grace period) unless a manifest linked to any repository
 * still references them or they are pinned (being served or fetched). For cache eviction: the
 * caller has already deleted the manifests it decided to drop. Index first, file second, as GC.
 */
export async function removeUnreferencedBlobs(ctx: StoreContext, digests: string[]): Promise<{ removed: string[]; bytesFreed: number }> {
  const wanted = new Set(digests);
  if (wanted.size === 0) return { removed: [], bytesFreed: 0 };
  const gone = await durableTransaction(ctx.db, () => {
    // Marked inside the transaction: a manifest stored since cannot lose its blobs.
    const live = new Set<string>();
    for (const m of markManifests(ctx)) for (const b of ctx.db.manifests.get(m)?.blobs ?? []) live.add(b);
    const out: Array<{ digest: string; size: number }> = [];
    for (const digest of wanted) {
      const rec = ctx.db.blobs.get(digest);
      if (!rec || live.has(digest) || ctx.pins.has(digest)) continue;
      ctx.db.blobs.remove(digest);
      out.push({ digest, size: rec.size });
    }
    const doomed = new Set(out.map((o) => o.digest));
    if (doomed.size > 0) {
      for (const key of scan(ctx.db.repoBlobs.getKeys())) if (doomed.has(key[1])) ctx.db.repoBlobs.remove(key);
    }
    return out;
  });
  const removed: string[] = [];
  let bytesFreed = 0;
  for (const { digest, size } of gone) {
    await ctx.digestLocks.run(digest, async () => {
      if (ctx.db.blobs.get(digest)) return; // re-committed meanwhile: the file is in use again
      await unlinkIfExists(ctx.layout.blobPath(digest));
    });
    removed.push(digest);
    bytesFreed += size;
  }
  return { removed, bytesFreed };
}
