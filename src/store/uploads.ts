import { durableTransaction } from './index-db.ts';
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, stat, truncate } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashingStream, parseDigest } from '../lib/digest.ts';
import { unlinkIfExists } from '../lib/fs-atomic.ts';
import { commitFile, verify, type BlobInfo } from './blobs.ts';
import type { StoreContext } from './context.ts';
import { StoreErrorCode, storeError } from './errors.ts';
import type { UploadRecord } from './index-db.ts';
import { isUploadId } from './layout.ts';

export interface UploadStatus {
  id: string;
  repo: string;
  /** bytes received and durable */
  offset: number;
}

/**
 * Running sha256 per session, valid while it covers exactly the recorded offset; after a restart or a
 * gap the file is re-hashed at finish instead. Hash state cannot be persisted, the bytes can.
 */
export type UploadHashes = Map<string, { hash: Hash; offset: number }>;

export async function createUpload(ctx: StoreContext, repo: string, client?: string): Promise<UploadStatus> {
  const id = randomUUID();
  const fh = await open(ctx.layout.uploadPath(id), 'wx');
  await fh.close();
  const now = Date.now();
  await durableTransaction(ctx.db, () => ctx.db.uploads.put(id, { repo, offset: 0, startedAt: now, updatedAt: now, ...(client !== undefined ? { client } : {}) }));
  return { id, repo, offset: 0 };
}

/** Open sessions: all of them, and those opened by `client`. */
export function countUploads(ctx: StoreContext, client: string): { total: number; client: number } {
  let total = 0;
  let mine = 0;
  for (const { value } of ctx.db.uploads.getRange()) {
    total++;
    if (value.client === client) mine++;
  }
  return { total, client: mine };
}

/**
 * Drops sessions untouched for uploadTtlSeconds (records, files, running hashes), except those
 * receiving bytes right now. Run periodically: abandoned sessions otherwise hold disk and memory.
 */
export async function expireUploads(ctx: StoreContext, hashes: UploadHashes, busy: ReadonlySet<string>, now = Date.now()): Promise<number> {
  const edge = now - ctx.config.uploadTtlSeconds * 1000;
  const stale: string[] = [];
  for (const { key, value } of ctx.db.uploads.getRange()) {
    if (value.updatedAt < edge && !busy.has(key)) stale.push(key);
  }
  for (const id of stale) {
    hashes.delete(id);
    await durableTransaction(ctx.db, () => ctx.db.uploads.remove(id));
    await unlinkIfExists(ctx.layout.uploadPath(id));
  }
  return stale.length;
}

export function getUpload(ctx: StoreContext, repo: string, id: string): UploadStatus {
  const rec = lookup(ctx, repo, id);
  return { id, repo, offset: rec.offset };
}

function lookup(ctx: StoreContext, repo: string, id: string): UploadRecord {
  const rec = isUploadId(id) ? ctx.db.uploads.get(id) : undefined;
  if (!rec || rec.repo !== repo) throw storeError(StoreErrorCode.uploadUnknown, `upload ${id.slice(0, 64)} unknown`);
  return rec;
}

/**
 * Appends a chunk. start, when the client states it (Content-Range), must equal the current offset.
 * Bytes that reached the disk before a client disconnect are kept and recorded, so the client can
 * ask for the status and resume from there.
 */
export async function appendUpload(
  ctx: StoreContext,
  hashes: UploadHashes,
  repo: string,
  id: string,
  source: Readable,
  opts: { start?: number; length?: number; signal?: AbortSignal } = {},
): Promise<UploadStatus> {
  const rec = lookup(ctx, repo, id);
  if (opts.start !== undefined && opts.start !== rec.offset) {
    source.resume();
    throw storeError(StoreErrorCode.rangeInvalid, `chunk starts at ${opts.start}, upload is at ${rec.offset}`, {
      offset: rec.offset,
    });
  }
  const path = ctx.layout.uploadPath(id);
  let running = hashes.get(id);
  if (running && running.offset !== rec.offset) running = undefined;
  if (!running && rec.offset === 0) running = { hash: createHash('sha256'), offset: 0 };
  hashes.delete(id);
  const counter = new HashingStream('sha256', running?.hash);
  let failure: unknown;
  try {
    // A crash may have left bytes past the recorded offset: they were never acknowledged.
    await truncate(path, rec.offset);
    await pipeline(source, counter, createWriteStream(path, { flags: 'r+', start: rec.offset, flush: true }), {
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    failure = err;
  }
  // What the write stream flushed is on disk; trust the file, bounded by what we counted.
  const size = Math.min((await stat(path)).size, rec.offset + counter.bytes);
  const offset = failure ? size : rec.offset + counter.bytes;
  await durableTransaction(ctx.db, () => ctx.db.uploads.put(id, { ...rec, offset, updatedAt: Date.now() }));
  if (!failure && running) hashes.set(id, { hash: running.hash, offset });
  if (failure) throw failure;
  if (opts.length !== undefined && counter.bytes !== opts.length) {
    throw storeError(StoreErrorCode.sizeInvalid, `chunk had ${counter.bytes} bytes, Content-Length said ${opts.length}`);
  }
  return { id, repo, offset };
}

/** Completes an upload: verifies the digest of everything received and commits the blob. */
export async function finishUpload(
  ctx: StoreContext,
  hashes: UploadHashes,
  repo: string,
  id: string,
  digest: string,
): Promise<BlobInfo> {
  const { algorithm } = parseDigest(digest);
  const rec = lookup(ctx, repo, id);
  const path = ctx.layout.uploadPath(id);
  const running = hashes.get(id);
  hashes.delete(id);
  await truncate(path, rec.offset);
  let actual: string;
  if (algorithm === 'sha256' && running && running.offset === rec.offset) {
    actual = `sha256:${running.hash.digest('hex')}`;
  } else {
    const h = new HashingStream(algorithm);
    if (rec.offset > 0) {
      await pipeline(createReadStream(path, { start: 0, end: rec.offset - 1 }), h, async (s) => {
        for await (const _ of s);
      });
    }
    actual = h.digest();
  }
  try {
    verify(actual, rec.offset, { digest });
  } catch (err) {
    // The session cannot succeed any more (bytes are immutable once received): drop it, as distribution does.
    await cancelUpload(ctx, hashes, repo, id);
    throw err;
  }
  const fh = await open(path, 'r+');
  await fh.sync().finally(() => fh.close());
  await commitFile(ctx, path, digest, rec.offset, repo);
  await durableTransaction(ctx.db, () => ctx.db.uploads.remove(id));
  await unlinkIfExists(path);
  return { digest, size: rec.offset };
}

export async function cancelUpload(ctx: StoreContext, hashes: UploadHashes, repo: string, id: string): Promise<void> {
  lookup(ctx, repo, id);
  hashes.delete(id);
  await durableTransaction(ctx.db, () => ctx.db.uploads.remove(id));
  await unlinkIfExists(ctx.layout.uploadPath(id));
}
