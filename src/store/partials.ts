import { open, truncate } from 'node:fs/promises';
import { fileSize, unlinkIfExists } from '../lib/fs-atomic.ts';
import { commitFile } from './blobs.ts';
import type { StoreContext } from './context.ts';
import { durableTransaction, scan } from './index-db.ts';

/** Size recorded for a blob whose size nobody said (the upstream sent no length). */
const UNKNOWN_SIZE = -1;

export interface Partial {
  digest: string;
  path: string;
  /** Bytes kept in the file: resume from here (the fill re-hashes them). */
  offset: number;
  /**
   * Bytes fsync'ed and recorded at the last checkpoint. Bytes between durable and offset were
   * written after it, before a crash: kept, and fetched again only if the blob fails its digest.
   */
  durable: number;
  size: number | undefined;
}

/**
 * Opens (or resumes) the partial file of a download. The bytes written after the last checkpoint
 * (a kill -9 leaves them whole; a power cut may not) are kept as an unverified tail as long as they
 * fit the blob's size; a file longer than the blob is cut back to the checkpoint. A size change
 * restarts from zero. `cache`: the pull-through cache's partial (a sync run does not drop it).
 */
export async function beginPartial(ctx: StoreContext, digest: string, size: number | undefined, opts: { cache?: boolean } = {}): Promise<Partial> {
  const path = ctx.layout.partialPath(digest);
  const rec = ctx.db.partials.get(digest);
  const recorded = size ?? UNKNOWN_SIZE;
  let offset = 0;
  let durable = 0;
  if (rec && rec.size === recorded) {
    const onDisk = (await fileSize(path)) ?? 0;
    durable = Math.min(onDisk, rec.offset);
    // Without a known size the tail cannot be judged: only the checkpoint is kept.
    offset = size !== undefined && onDisk <= size ? onDisk : durable;
  }
  const fh = await open(path, 'a');
  await fh.close();
  await truncate(path, offset);
  await durableTransaction(ctx.db, () => ctx.db.partials.put(digest, { offset: durable, size: recorded, updatedAt: Date.now(), ...(opts.cache ? { cache: true } : {}) }));
  return { digest, path, offset, durable, size };
}

/** The size a partial of `digest` was recorded with (undefined: none, or its size was unknown). */
export function partialSize(ctx: StoreContext, digest: string): number | undefined {
  const size = ctx.db.partials.get(digest)?.size;
  return size === undefined || size === UNKNOWN_SIZE ? undefined : size;
}

/** Records progress; the caller has fsync'ed the file up to offset. */
export async function checkpointPartial(ctx: StoreContext, digest: string, offset: number): Promise<void> {
  await durableTransaction(ctx.db, () => {
    const rec = ctx.db.partials.get(digest);
    if (rec) ctx.db.partials.put(digest, { ...rec, offset, updatedAt: Date.now() });
  });
}

/** Moves a complete, verified, fsync'ed partial into the blob store. */
export async function commitPartial(ctx: StoreContext, digest: string, size: number, repo?: string): Promise<void> {
  const path = ctx.layout.partialPath(digest);
  await commitFile(ctx, path, digest, size, repo);
  await durableTransaction(ctx.db, () => ctx.db.partials.remove(digest));
  await unlinkIfExists(path);
}

export async function discardPartial(ctx: StoreContext, digest: string): Promise<void> {
  await durableTransaction(ctx.db, () => ctx.db.partials.remove(digest));
  await unlinkIfExists(ctx.layout.partialPath(digest));
}

export function listPartials(ctx: StoreContext): Array<{ digest: string; offset: number; size: number }> {
  return [...scan(ctx.db.partials.getRange())].map(({ key, value }) => ({ digest: key, offset: value.offset, size: value.size }));
}
