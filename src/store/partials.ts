import { open, truncate } from 'node:fs/promises';
import { fileSize, unlinkIfExists } from '../lib/fs-atomic.ts';
import { commitFile } from './blobs.ts';
import type { StoreContext } from './context.ts';
import { durableTransaction, scan } from './index-db.ts';

export interface Partial {
  digest: string;
  path: string;
  /** bytes already durable: resume from here */
  offset: number;
  size: number;
}

/**
 * Opens (or resumes) the partial file of a download. Bytes past the recorded offset were written
 * but never checkpointed, so they are cut; a size change upstream restarts from zero.
 */
export async function beginPartial(ctx: StoreContext, digest: string, size: number): Promise<Partial> {
  const path = ctx.layout.partialPath(digest);
  const rec = ctx.db.partials.get(digest);
  let offset = 0;
  if (rec && rec.size === size) {
    const onDisk = await fileSize(path);
    offset = onDisk === undefined ? 0 : Math.min(onDisk, rec.offset);
  }
  const fh = await open(path, 'a');
  await fh.close();
  await truncate(path, offset);
  await durableTransaction(ctx.db, () => ctx.db.partials.put(digest, { offset, size, updatedAt: Date.now() }));
  return { digest, path, offset, size };
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
