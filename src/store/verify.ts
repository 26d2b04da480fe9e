import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { durableRename } from '../lib/fs-atomic.ts';
import { parseDigest } from '../lib/digest.ts';
import type { StoreContext } from './context.ts';
import { durableTransaction } from './index-db.ts';

/** A blob whose file no longer matches its digest (corrupt) or is gone (missing). */
export interface BadBlob {
  digest: string;
  size: number;
  problem: 'corrupt' | 'missing';
  /** What the file hashed to, or its size, when it was corrupt. */
  detail: string;
  /** Where --repair moved the file (corrupt blobs only). */
  quarantinedTo?: string;
}

/** repository:tag (or repository@digest when untagged) of every image a bad blob breaks. */
export interface BrokenImage {
  repository: string;
  reference: string;
  digest: string;
  blobs: string[];
}

export interface VerifyReport {
  blobs: number;
  bytes: number;
  bad: BadBlob[];
  brokenImages: BrokenImage[];
  repaired: boolean;
}

export interface VerifyOptions {
  repair?: boolean;
  /** Called as bytes are hashed (batched per chunk) and once per blob. */
  onProgress?: (p: { blobsDone: number; blobs: number; bytesDone: number; bytes: number }) => void;
  signal?: AbortSignal;
}

/**
 * Re-hashes every committed blob file, one at a time, streaming (memory stays at one read buffer).
 * With repair, a corrupt file is moved to <dataDir>/quarantine/ and the blob's record is dropped,
 * so every image that needs it counts as incomplete and the next sync fetches it again.
 */
export async function verifyBlobs(ctx: StoreContext, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const all = [...ctx.db.blobs.getRange()].map(({ key, value }) => ({ digest: key, size: value.size }));
  const total = all.reduce((n, b) => n + b.size, 0);
  const report: VerifyReport = { blobs: all.length, bytes: total, bad: [], brokenImages: [], repaired: opts.repair === true };
  let bytesDone = 0;
  let blobsDone = 0;
  for (const blob of all) {
    opts.signal?.throwIfAborted();
    const bad = await checkBlob(ctx, blob, (n) => {
      bytesDone += n;
      opts.onProgress?.({ blobsDone, blobs: all.length, bytesDone, bytes: total });
    });
    blobsDone++;
    opts.onProgress?.({ blobsDone, blobs: all.length, bytesDone, bytes: total });
    if (bad) report.bad.push(bad);
  }
  report.brokenImages = imagesUsing(ctx, new Set(report.bad.map((b) => b.digest)));
  if (opts.repair) for (const bad of report.bad) await quarantine(ctx, bad);
  if (report.bad.length > 0) ctx.log.warn({ bad: report.bad.length, images: report.brokenImages.length, repaired: report.repaired }, 'blob verification found bad blobs');
  return report;
}

async function checkBlob(ctx: StoreContext, blob: { digest: string; size: number }, onBytes: (n: number) => void): Promise<BadBlob | undefined> {
  const { algorithm, hex } = parseDigest(blob.digest);
  const hash = createHash(algorithm);
  let size = 0;
  try {
    await pipeline(
      createReadStream(ctx.layout.blobPath(blob.digest), { highWaterMark: ctx.config.readChunkBytes }),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          size += chunk.length;
          onBytes(chunk.length);
          cb();
        },
      }),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...blob, problem: 'missing', detail: 'file not found' };
    throw err;
  }
  const got = hash.digest('hex');
  if (size !== blob.size) return { ...blob, problem: 'corrupt', detail: `${size} bytes on disk, ${blob.size} recorded` };
  if (got !== hex) return { ...blob, problem: 'corrupt', detail: `hashes to ${algorithm}:${got}` };
  return undefined;
}

/** Images (tagged references first, else the manifest digest) whose manifests or index children need a bad blob. */
function imagesUsing(ctx: StoreContext, bad: Set<string>): BrokenImage[] {
  if (bad.size === 0) return [];
  const broken = new Map<string, string[]>();
  const needs = (digest: string, seen = new Set<string>()): string[] => {
    if (seen.has(digest)) return [];
    seen.add(digest);
    const rec = ctx.db.manifests.get(digest);
    if (!rec) return [];
    const own = rec.blobs.filter((b) => bad.has(b));
    return [...own, ...rec.children.flatMap((c) => needs(c, seen))];
  };
  for (const key of ctx.db.repoManifests.getKeys()) {
    const blobs = needs(key[1]);
    if (blobs.length > 0) broken.set(`${key[0]}\0${key[1]}`, blobs);
  }
  const out: BrokenImage[] = [];
  const named = new Set<string>();
  for (const { key, value: digest } of ctx.db.tags.getRange()) {
    const blobs = broken.get(`${key[0]}\0${digest}`);
    if (!blobs) continue;
    out.push({ repository: key[0], reference: key[1], digest, blobs });
    named.add(`${key[0]}\0${digest}`);
  }
  // Untagged manifests that are not a child of a broken, named image still count.
  const children = new Set<string>();
  for (const k of broken.keys()) for (const c of ctx.db.manifests.get(k.split('\0')[1]!)?.children ?? []) children.add(c);
  for (const [k, blobs] of broken) {
    const [repository, digest] = k.split('\0') as [string, string];
    if (!named.has(k) && !children.has(digest)) out.push({ repository, reference: digest, digest, blobs });
  }
  return out;
}

async function quarantine(ctx: StoreContext, bad: BadBlob): Promise<void> {
  await ctx.digestLocks.run(bad.digest, async () => {
    // Index first: from here the blob is absent (404, and sync fetches it again).
    await durableTransaction(ctx.db, () => ctx.db.blobs.remove(bad.digest));
    if (bad.problem !== 'corrupt') return;
    const dir = join(ctx.layout.root, 'quarantine');
    await mkdir(dir, { recursive: true });
    const { algorithm, hex } = parseDigest(bad.digest);
    const to = join(dir, `${algorithm}-${hex}-${Date.now()}`);
    await durableRename(ctx.layout.blobPath(bad.digest), to);
    bad.quarantinedTo = to;
  });
  ctx.log.warn({ digest: bad.digest, problem: bad.problem, quarantinedTo: bad.quarantinedTo }, 'bad blob quarantined');
}
