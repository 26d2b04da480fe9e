import type { StoreContext } from './context.ts';
import { durableTransaction, prefixRange } from './index-db.ts';

/**
 * Reverse index of the `manifests` records: [blob digest, manifest digest] -> 1 for every config
 * and layer a stored manifest lists. Written and removed in the same transactions as the manifest
 * records, so "does any stored manifest reference this blob?" is one range lookup, not a scan
 * (the peer endpoint asks it per request).
 */

/** Marks a store whose index was built (stores written before it existed are built at open). */
const BUILT: [string, string] = ['', 'v1'];

export function addBlobRefsInTxn(ctx: StoreContext, manifest: string, blobs: readonly string[]): void {
  for (const b of blobs) ctx.db.blobRefs.put([b, manifest], 1);
}

export function removeBlobRefsInTxn(ctx: StoreContext, manifest: string, blobs: readonly string[]): void {
  for (const b of blobs) ctx.db.blobRefs.remove([b, manifest]);
}

/** True when some stored manifest (linked or awaiting GC) lists the digest as its config or a layer. */
export function isBlobReferenced(ctx: StoreContext, digest: string): boolean {
  for (const _ of ctx.db.blobRefs.getKeys({ ...prefixRange([digest]), limit: 1 })) return true;
  return false;
}

/** Builds the index once for a store that predates it; returns the manifests indexed (0 when built). */
export async function ensureBlobRefs(ctx: StoreContext): Promise<number> {
  if (ctx.db.blobRefs.get(BUILT) !== undefined) return 0;
  return durableTransaction(ctx.db, () => {
    let n = 0;
    for (const { key, value } of ctx.db.manifests.getRange()) {
      addBlobRefsInTxn(ctx, key, value.blobs);
      n++;
    }
    ctx.db.blobRefs.put(BUILT, 1);
    return n;
  });
}
