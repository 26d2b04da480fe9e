import { unlinkIfExists } from '../lib/fs-atomic.ts';
import type { StoreContext } from './context.ts';
import { collectGarbage } from './gc.ts';
import { durableTransaction } from './index-db.ts';

export interface ReliefOptions {
  /** Bytes wanted free (beyond the margin); relief stops early once they are. */
  needBytes: number;
  /** Bytes the filesystem could ever hold for writes (size minus the margin). */
  capacity: number;
  /** Free bytes available for new writes now (re-read after each step). */
  available: () => number;
  /** Pull-through cache eviction, least recently used first, never the desired set: returns bytes freed. */
  evictCache?: ((bytes: number) => Promise<number>) | undefined;
  /** Partials a download still wants (the desired images' blobs): never removed here. */
  keepPartials?: ReadonlySet<string> | undefined;
  /** Upload sessions being written right now: never removed. */
  activeUploads: ReadonlySet<string>;
  /** Upload sessions idle this long count as abandoned under pressure. */
  uploadIdleSeconds: number;
  /** GC grace under pressure (shorter than the usual one; pins still protect running work). */
  gcGraceSeconds: number;
}

export interface ReliefReport {
  cacheBytes: number;
  uploadBytes: number;
  partialBytes: number;
  gcBytes: number;
}

/**
 * Takes space back when a write does not fit, cheapest loss first: the pull-through cache (it can be
 * fetched again on demand), then abandoned uploads and partial downloads nothing wants, then a
 * garbage collection with a short grace period. Stops as soon as `needBytes` are available.
 */
export async function relieve(ctx: StoreContext, opts: ReliefOptions): Promise<ReliefReport> {
  const report: ReliefReport = { cacheBytes: 0, uploadBytes: 0, partialBytes: 0, gcBytes: 0 };
  const enough = () => opts.available() >= opts.needBytes;
  // More than the whole disk can hold beside its margin: evicting anything would not help.
  if (enough() || opts.needBytes > opts.capacity) return report;
  if (opts.evictCache) report.cacheBytes = await opts.evictCache(opts.needBytes - opts.available());
  if (!enough()) report.uploadBytes = await dropIdleUploads(ctx, opts.activeUploads, opts.uploadIdleSeconds);
  if (!enough() && opts.keepPartials) report.partialBytes = await dropOrphanPartials(ctx, opts.keepPartials);
  if (!enough()) report.gcBytes = (await collectGarbage(ctx, opts.gcGraceSeconds)).bytesFreed;
  ctx.log.info({ ...report, needBytes: opts.needBytes, availableBytes: opts.available() }, 'disk pressure: space reclaimed');
  return report;
}

async function dropIdleUploads(ctx: StoreContext, active: ReadonlySet<string>, idleSeconds: number): Promise<number> {
  const edge = Date.now() - idleSeconds * 1000;
  const idle: Array<{ key: string; bytes: number }> = [];
  for (const { key, value } of ctx.db.uploads.getRange()) {
    if (value.updatedAt < edge && !active.has(key)) idle.push({ key, bytes: value.offset });
  }
  const bytes = await removeAll(ctx, ctx.db.uploads, idle, (id) => ctx.layout.uploadPath(id));
  if (idle.length > 0) ctx.log.info({ sessions: idle.length, bytes }, 'abandoned upload sessions removed for space');
  return bytes;
}

/**
 * Partials no desired image needs and no download holds (pinned): their bytes would never be used.
 * keepCache: the pull-through cache's partials stay (a proxy miss resumes them; GC ages them out).
 */
export async function dropOrphanPartials(ctx: StoreContext, keep: ReadonlySet<string>, opts: { keepCache?: boolean } = {}): Promise<number> {
  const orphans: Array<{ key: string; bytes: number }> = [];
  for (const { key, value } of ctx.db.partials.getRange()) {
    if (opts.keepCache && value.cache) continue;
    if (!keep.has(key) && !ctx.pins.has(key)) orphans.push({ key, bytes: value.offset });
  }
  const bytes = await removeAll(ctx, ctx.db.partials, orphans, (digest) => ctx.layout.partialPath(digest));
  if (orphans.length > 0) ctx.log.info({ partials: orphans.length, bytes, digests: orphans.map((o) => o.key) }, 'partial downloads no desired image needs removed');
  return bytes;
}

/** Records first (durably), files second: a crash in between leaves files start-up removes. */
async function removeAll(ctx: StoreContext, db: { remove(key: string): unknown }, items: Array<{ key: string; bytes: number }>, pathOf: (key: string) => string): Promise<number> {
  if (items.length === 0) return 0;
  await durableTransaction(ctx.db, () => {
    for (const { key } of items) db.remove(key);
  });
  let bytes = 0;
  for (const { key, bytes: n } of items) {
    await unlinkIfExists(pathOf(key));
    bytes += n;
  }
  return bytes;
}
