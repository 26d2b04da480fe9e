import { durableTransaction } from './index-db.ts';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashingStream, parseDigest, type Algorithm } from '../lib/digest.ts';
import { durableRename, fileSize, unlinkIfExists } from '../lib/fs-atomic.ts';
import type { StoreContext } from './context.ts';
import { StoreErrorCode, storeError } from './errors.ts';

export interface BlobInfo {
  digest: string;
  size: number;
}

export interface ExpectedBlob {
  digest?: string;
  size?: number;
}

/**
 * Streams source into a temp file while hashing, fsyncs, checks digest and size, then commits.
 * Nothing becomes visible unless it verified; on any failure the temp file is removed.
 */
export async function ingestBlob(
  ctx: StoreContext,
  source: Readable,
  expected: ExpectedBlob,
  opts: { repo?: string; signal?: AbortSignal } = {},
): Promise<BlobInfo> {
  const algorithm: Algorithm = expected.digest ? parseDigest(expected.digest).algorithm : 'sha256';
  const tmp = ctx.layout.ingestPath(randomUUID());
  const hasher = new HashingStream(algorithm);
  try {
    await pipeline(source, hasher, createWriteStream(tmp, { flags: 'wx', flush: true }), {
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const digest = hasher.digest();
    verify(digest, hasher.bytes, expected);
    await commitFile(ctx, tmp, digest, hasher.bytes, opts.repo);
    return { digest, size: hasher.bytes };
  } finally {
    await unlinkIfExists(tmp);
  }
}

export function verify(actualDigest: string, actualSize: number, expected: ExpectedBlob): void {
  if (expected.size !== undefined && expected.size !== actualSize) {
    throw storeError(StoreErrorCode.sizeInvalid, `size ${actualSize} does not match expected ${expected.size}`);
  }
  if (expected.digest !== undefined && expected.digest !== actualDigest) {
    throw storeError(StoreErrorCode.digestInvalid, `content digest ${actualDigest} does not match ${expected.digest}`, {
      expected: expected.digest,
      actual: actualDigest,
    });
  }
}

/**
 * Moves a verified, fsync'ed file into the content-addressed tree and indexes it. The index entry is
 * written after the rename, so an entry never points at a missing file; a crash between the two
 * leaves an unindexed file that start-up reconciliation adopts.
 */
export async function commitFile(
  ctx: StoreContext,
  verifiedPath: string,
  digest: string,
  size: number,
  repo?: string,
): Promise<void> {
  await ctx.digestLocks.run(digest, async () => {
    const final = ctx.layout.blobPath(digest);
    const known = ctx.db.blobs.get(digest);
    if (!known || (await fileSize(final)) !== size) await durableRename(verifiedPath, final);
    const now = Date.now();
    await durableTransaction(ctx.db, () => {
      if (!ctx.db.blobs.get(digest)) ctx.db.blobs.put(digest, { size, createdAt: now });
      if (repo !== undefined) linkBlobInTxn(ctx, repo, digest, now);
    });
  });
}

export function linkBlobInTxn(ctx: StoreContext, repo: string, digest: string, now: number): void {
  if (ctx.db.repoBlobs.get([repo, digest]) === undefined) ctx.db.repoBlobs.put([repo, digest], now);
  if (ctx.db.repos.get(repo) === undefined) ctx.db.repos.put(repo, now);
}


/** A blob as seen from one repository: present only if linked there. */
export function statBlob(ctx: StoreContext, repo: string, digest: string): BlobInfo | undefined {
  if (ctx.db.repoBlobs.get([repo, digest]) === undefined) return undefined;
  const rec = ctx.db.blobs.get(digest);
  return rec ? { digest, size: rec.size } : undefined;
}

/** Opens a byte range [start, end] (inclusive) of a blob for streaming with a bounded buffer. */
export function openBlob(ctx: StoreContext, digest: string, range?: { start: number; end: number }): ReadStream {
  return createReadStream(ctx.layout.blobPath(digest), {
    highWaterMark: ctx.config.readChunkBytes,
    ...(range ? { start: range.start, end: range.end } : {}),
  });
}

/**
 * dist-spec cross-repository mount: links a blob that `from` holds into `repo`. Only from a
 * repository that has it (as distribution does): content is shared store-wide, but naming a
 * digest must not make another repository's blob readable here.
 */
export async function mountBlob(ctx: StoreContext, repo: string, digest: string, from: string): Promise<BlobInfo | undefined> {
  if (ctx.db.repoBlobs.get([from, digest]) === undefined) return undefined;
  return linkBlob(ctx, repo, digest);
}

/** Links a stored blob into a repository, whoever stored it (the pull-through cache's own fetches). */
export async function linkBlob(ctx: StoreContext, repo: string, digest: string): Promise<BlobInfo | undefined> {
  const rec = ctx.db.blobs.get(digest);
  if (!rec) return undefined;
  await durableTransaction(ctx.db, () => linkBlobInTxn(ctx, repo, digest, Date.now()));
  return { digest, size: rec.size };
}

/** dist-spec: DELETE blob removes it from the repository; GC reclaims the file when nothing uses it. */
export async function unlinkBlob(ctx: StoreContext, repo: string, digest: string): Promise<void> {
  const removed = await durableTransaction(ctx.db, () => {
    if (ctx.db.repoBlobs.get([repo, digest]) === undefined) return false;
    ctx.db.repoBlobs.remove([repo, digest]);
    return true;
  });
  if (!removed) throw storeError(StoreErrorCode.blobUnknown, `blob ${digest} is not in ${repo}`);
}
