import type { StoreContext } from './context.ts';
import { markManifests } from './gc.ts';

/** What a collection now would do, without doing it (`satellite gc --dry-run`). */
export interface GcPlan {
  manifestsRemoved: number;
  blobsRemoved: number;
  bytesFreed: number;
  /** Unreferenced blobs kept because they (or their repository link) are younger than the grace period. */
  keptYoung: { blobs: number; bytes: number; graceSeconds: number; oldestFreeAt: string | null };
  /** Unreferenced blobs kept because in-flight work (a download, a pull) holds them. */
  keptPinned: { blobs: number; bytes: number };
}

/** Mirrors collectGarbage's mark phase: the same roots, grace edge and pins. */
export function planGarbage(ctx: StoreContext): GcPlan {
  const graceSeconds = ctx.config.gcGraceSeconds;
  const now = Date.now();
  const graceEdge = now - graceSeconds * 1000;
  const liveManifests = markManifests(ctx);
  const referenced = new Set<string>();
  for (const digest of liveManifests) for (const b of ctx.db.manifests.get(digest)?.blobs ?? []) referenced.add(b);
  // Youngest link per unreferenced blob: a young link keeps the blob (a push in progress).
  const youngLink = new Map<string, number>();
  for (const { key, value } of ctx.db.repoBlobs.getRange()) {
    if (value >= graceEdge && !referenced.has(key[1])) youngLink.set(key[1], Math.max(value, youngLink.get(key[1]) ?? 0));
  }
  const plan: GcPlan = {
    manifestsRemoved: 0,
    blobsRemoved: 0,
    bytesFreed: 0,
    keptYoung: { blobs: 0, bytes: 0, graceSeconds, oldestFreeAt: null },
    keptPinned: { blobs: 0, bytes: 0 },
  };
  for (const digest of ctx.db.manifests.getKeys()) if (!liveManifests.has(digest) && !ctx.pins.has(digest)) plan.manifestsRemoved++;
  let firstFree = Infinity;
  for (const { key: digest, value: rec } of ctx.db.blobs.getRange()) {
    if (referenced.has(digest)) continue;
    if (ctx.pins.has(digest)) {
      plan.keptPinned.blobs++;
      plan.keptPinned.bytes += rec.size;
      continue;
    }
    const young = Math.max(rec.createdAt >= graceEdge ? rec.createdAt : 0, youngLink.get(digest) ?? 0);
    if (young > 0) {
      plan.keptYoung.blobs++;
      plan.keptYoung.bytes += rec.size;
      firstFree = Math.min(firstFree, young + graceSeconds * 1000);
      continue;
    }
    plan.blobsRemoved++;
    plan.bytesFreed += rec.size;
  }
  if (Number.isFinite(firstFree)) plan.keptYoung.oldestFreeAt = new Date(firstFree).toISOString();
  return plan;
}
