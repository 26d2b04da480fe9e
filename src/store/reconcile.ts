import { durableTransaction, scan } from './index-db.ts';
import { readdir, rm, truncate, mkdir } from 'node:fs/promises';
import { fileSize } from '../lib/fs-atomic.ts';
import { join } from 'node:path';
import { errnoCode } from '../lib/errors.ts';
import { isDigest } from '../lib/digest.ts';
import type { StoreContext } from './context.ts';
import { isUploadId } from './layout.ts';

export interface ReconcileReport {
  tempFilesRemoved: number;
  uploadsRepaired: number;
  uploadsDropped: number;
  blobRecordsDropped: number;
  orphanBlobsAdopted: number;
}

/**
 * Start-up repair after a crash or power cut. The write order everywhere is "file durable, then index",
 * so the only possible leftovers are: temp files, upload files longer than their recorded offset,
 * upload records whose file is gone (committed), and blob files without an index entry (committed
 * but not indexed). An index entry without its file means outside damage: the entry is dropped.
 */
export async function reconcile(ctx: StoreContext): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    tempFilesRemoved: 0,
    uploadsRepaired: 0,
    uploadsDropped: 0,
    blobRecordsDropped: 0,
    orphanBlobsAdopted: 0,
  };
  const { layout, db } = ctx;
  for (const dir of [layout.blobsDir, layout.ingestDir, layout.uploadsDir, layout.partialDir]) await mkdir(dir, { recursive: true, mode: 0o700 });

  for (const name of await readdir(layout.ingestDir)) {
    await rm(join(layout.ingestDir, name), { force: true, recursive: true });
    report.tempFilesRemoved++;
  }

  const ttlEdge = Date.now() - ctx.config.uploadTtlSeconds * 1000;
  for (const { key: id, value: rec } of scan(db.uploads.getRange())) {
    const size = await fileSize(layout.uploadPath(id));
    if (size === undefined || rec.updatedAt < ttlEdge) {
      await db.uploads.remove(id);
      await rm(layout.uploadPath(id), { force: true });
      report.uploadsDropped++;
    } else if (size !== rec.offset) {
      // Bytes past the offset were never acknowledged; a shorter file lost acknowledged bytes to the disk.
      if (size > rec.offset) await truncate(layout.uploadPath(id), rec.offset);
      else await db.uploads.put(id, { ...rec, offset: size });
      report.uploadsRepaired++;
    }
  }
  for (const name of await readdir(layout.uploadsDir)) {
    if (!isUploadId(name) || !db.uploads.get(name)) {
      await rm(join(layout.uploadsDir, name), { force: true, recursive: true });
      report.tempFilesRemoved++;
    }
  }

  // Partial downloads: keep the ones with a record (beginPartial trims them), drop the rest.
  const partialNames = new Set([...scan(db.partials.getKeys())].map((d) => d.replace(':', '-')));
  for (const name of await readdir(layout.partialDir)) {
    if (!partialNames.has(name)) {
      await rm(join(layout.partialDir, name), { force: true, recursive: true });
      report.tempFilesRemoved++;
    }
  }

  for (const { key: digest, value: rec } of scan(db.blobs.getRange())) {
    const size = await fileSize(layout.blobPath(digest));
    if (size !== rec.size) {
      ctx.log.warn({ digest, expected: rec.size, found: size ?? null }, 'blob file missing or damaged; dropping index entry');
      await durableTransaction(db, () => db.blobs.remove(digest));
      if (size !== undefined) await rm(layout.blobPath(digest), { force: true });
      report.blobRecordsDropped++;
    }
  }

  for (const algorithm of await readdirOrEmpty(layout.blobsDir)) {
    for (const prefix of await readdirOrEmpty(join(layout.blobsDir, algorithm))) {
      for (const hex of await readdirOrEmpty(join(layout.blobsDir, algorithm, prefix))) {
        const digest = `${algorithm}:${hex}`;
        const path = join(layout.blobsDir, algorithm, prefix, hex);
        if (!isDigest(digest) || !hex.startsWith(prefix)) {
          await rm(path, { force: true, recursive: true });
          continue;
        }
        if (db.blobs.get(digest)) continue;
        // Only verified content is ever renamed here, so an orphan is a complete blob: adopt it and
        // let GC decide whether anything needs it.
        const size = await fileSize(path);
        if (size === undefined) continue;
        await db.blobs.put(digest, { size, createdAt: Date.now() });
        report.orphanBlobsAdopted++;
      }
    }
  }
  ctx.log.info(report, 'store reconciled');
  return report;
}


async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw err;
  }
}
