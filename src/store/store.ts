import { statSync } from 'node:fs';
import { ensurePrivateDir, tightenFiles } from '../lib/private-files.ts';
import type { ReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { KeyedMutex } from '../lib/keyed-mutex.ts';
import { unlinkIfExists } from '../lib/fs-atomic.ts';
import * as blobs from './blobs.ts';
import type { StoreConfig, StoreContext } from './context.ts';
import { collectGarbage, type GcResult } from './gc.ts';
import { openIndexDb, scan } from './index-db.ts';
import { StoreErrorCode, storeError } from './errors.ts';
import { Layout } from './layout.ts';
import * as manifests from './manifests.ts';
import { reconcile, type ReconcileReport } from './reconcile.ts';
import * as uploads from './uploads.ts';
import * as partials from './partials.ts';
import { CacheIndex } from './cache-index.ts';
import { ensureBlobRefs, isBlobReferenced } from './blob-refs.ts';
import { removeUnreferencedBlobs } from './evict.ts';
import { planGarbage, type GcPlan } from './gc-plan.ts';
import { PullLog } from './pull-log.ts';
import { verifyBlobs, type VerifyOptions, type VerifyReport } from './verify.ts';
import { randomUUID } from 'node:crypto';
import { ControlState } from './control-state.ts';
import { SyncState, type SyncRecordTypes } from './sync-state.ts';
import { DiskSpace, isDiskError } from './free-space.ts';
import { dropOrphanPartials, relieve, type ReliefReport } from './pressure.ts';

/**
 * The content store: blob files plus the LMDB index. The only code that touches both; everything
 * else sees this class (or the narrower interfaces the registry asks for).
 */
export class Store {
  readonly #ctx: StoreContext;
  #verifying: { startedAt: number; repair: boolean } | undefined;
  readonly #hashes: uploads.UploadHashes = new Map();
  /** Upload sessions receiving bytes now (the sweep leaves them alone). */
  readonly #appending = new Set<string>();
  #sweep: NodeJS.Timeout | undefined;
  #closed = false;
  #cache: CacheIndex | undefined;
  #pulls: PullLog | undefined;
  #control: ControlState | undefined;
  #sync: SyncState | undefined;
  readonly reconciled: ReconcileReport;
  /** Free space, write-ability and the bytes promised to downloads in flight. */
  readonly disk: DiskSpace;
  #evictCache: ((bytes: number) => Promise<number>) | undefined;

  private constructor(ctx: StoreContext, reconciled: ReconcileReport) {
    this.#ctx = ctx;
    this.reconciled = reconciled;
    this.disk = new DiskSpace(ctx.layout.root, ctx.config.minFreeBytes ?? 0, ctx.log);
  }

  static async open(config: StoreConfig, log: Logger): Promise<Store> {
    const layout = new Layout(config.dataDir);
    // The data dir holds the index (desired state with upstream credentials) and identity.json.
    await ensurePrivateDir(layout.root);
    await ensurePrivateDir(layout.indexDir);
    const db = openIndexDb(layout.indexDir, config.indexMapSizeBytes);
    await tightenFiles(layout.indexDir);
    await tightenFiles(layout.root);
    const ctx: StoreContext = { config, log, db, layout, digestLocks: new KeyedMutex(), pins: new Map() };
    const report = await reconcile(ctx);
    const indexed = await ensureBlobRefs(ctx);
    if (indexed > 0) log.info({ manifests: indexed }, 'blob reference index built');
    return new Store(ctx, report);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    await this.#pulls?.flush();
    await this.#ctx.db.root.close();
  }

  // Blobs
  statBlob(repo: string, digest: string): blobs.BlobInfo | undefined {
    return blobs.statBlob(this.#ctx, repo, digest);
  }
  /** Global presence, regardless of repository. */
  hasBlob(digest: string): boolean {
    return this.#ctx.db.blobs.get(digest) !== undefined;
  }
  /** Size of a committed blob, regardless of repository; undefined when absent. */
  blobSize(digest: string): number | undefined {
    return this.#ctx.db.blobs.get(digest)?.size;
  }
  openBlob(digest: string, range?: { start: number; end: number }): ReadStream {
    return blobs.openBlob(this.#ctx, digest, range);
  }
  /** A push of a known size that does not fit is refused (DISK_FULL) before a byte is read. */
  async ingestBlob(source: Readable, expected: blobs.ExpectedBlob, opts?: { repo?: string; signal?: AbortSignal }) {
    if (expected.size !== undefined) this.#admitOrDrain(source, expected.size, `blob ${expected.digest ?? ''}`.trim());
    return this.disk.guard('a pushed blob', expected.size ?? 0, () => blobs.ingestBlob(this.#ctx, source, expected, opts));
  }
  /** Commits a verified, fsync'ed file produced elsewhere (e.g. a completed download). */
  commitVerifiedFile(path: string, digest: string, size: number, repo?: string): Promise<void> {
    return this.disk.guard(`blob ${digest}`, 0, () => blobs.commitFile(this.#ctx, path, digest, size, repo));
  }
  /** Cross-repository mount: only a blob `from` holds. */
  mountBlob(repo: string, digest: string, from: string) {
    return this.disk.guard('a blob link', 0, () => blobs.mountBlob(this.#ctx, repo, digest, from));
  }
  /** Links a stored blob into a repository regardless of where it came from (internal fetches only). */
  linkBlob(repo: string, digest: string) {
    return this.disk.guard('a blob link', 0, () => blobs.linkBlob(this.#ctx, repo, digest));
  }
  /** Throws DISK_FULL / STORE_READ_ONLY unless `bytes` fit beside the margin and in-flight downloads. */
  admitWrite(bytes: number, what: string): void {
    this.disk.admit(bytes, what);
  }
  #admitOrDrain(source: Readable, bytes: number, what: string): void {
    try {
      this.disk.admit(bytes, what);
    } catch (err) {
      source.resume();
      throw err;
    }
  }
  /**
   * Frees space for a write of `needBytes`: cache first, then abandoned uploads and (given the
   * partials still wanted) orphaned partials, then GC with the short pressure grace.
   */
  relieve(needBytes: number, keepPartials?: ReadonlySet<string>): Promise<ReliefReport> {
    return relieve(this.#ctx, {
      needBytes,
      capacity: this.disk.state().totalBytes - this.disk.minFreeBytes,
      available: () => this.disk.available(),
      evictCache: this.#evictCache,
      keepPartials,
      activeUploads: this.#appending,
      uploadIdleSeconds: this.#ctx.config.pressureUploadIdleSeconds ?? 600,
      gcGraceSeconds: this.#ctx.config.pressureGcGraceSeconds ?? 300,
    });
  }
  /** The pull-through cache registers how to evict `bytes` of itself under disk pressure. */
  setCacheEvictor(evict: ((bytes: number) => Promise<number>) | undefined): void {
    this.#evictCache = evict;
  }
  /**
   * Removes partial downloads of digests not in `keep` and not being downloaded (the pull-through
   * cache's stay: a proxy miss resumes them, GC ages them out); returns bytes freed.
   */
  discardOrphanPartials(keep: ReadonlySet<string>): Promise<number> {
    return dropOrphanPartials(this.#ctx, keep, { keepCache: true });
  }
  unlinkBlob(repo: string, digest: string) {
    return blobs.unlinkBlob(this.#ctx, repo, digest);
  }
  blobPath(digest: string): string {
    return this.#ctx.layout.blobPath(digest);
  }
  /** A fresh temp file path in the ingest directory (removed at start-up if left behind). */
  tempPath(): string {
    return this.#ctx.layout.ingestPath(randomUUID());
  }
  /**
   * Removes blobs now, skipping any a linked manifest references or that are pinned (cache
   * eviction; ordinary cleanup is collectGarbage).
   */
  removeUnreferencedBlobs(digests: string[]) {
    return removeUnreferencedBlobs(this.#ctx, digests);
  }
  /** The pull-through cache's records (tags with their check time, LRU access times). */
  get cacheIndex(): CacheIndex {
    this.#cache ??= new CacheIndex(this.#ctx);
    return this.#cache;
  }

  // Uploads
  /** client: the remote address that opens it (counted by countUploads). */
  createUpload(repo: string, client?: string) {
    return this.disk.guard('an upload session', 0, () => uploads.createUpload(this.#ctx, repo, client));
  }
  countUploads(client: string) {
    return uploads.countUploads(this.#ctx, client);
  }
  /** Drops sessions idle longer than uploadTtlSeconds now; resolves with how many. */
  expireUploads(now?: number): Promise<number> {
    return uploads.expireUploads(this.#ctx, this.#hashes, this.#appending, now);
  }
  /** Runs expireUploads every intervalMs until close (start-up reconcile only covers restarts). */
  sweepUploadsEvery(intervalMs: number): void {
    clearInterval(this.#sweep);
    let running = false;
    this.#sweep = setInterval(() => {
      if (running || this.#closed) return;
      running = true;
      this.expireUploads()
        .then((n) => n > 0 && this.#ctx.log.info({ expired: n }, 'expired abandoned upload sessions'))
        .catch((err: unknown) => this.#ctx.log.error({ err }, 'upload session sweep failed'))
        .finally(() => (running = false));
    }, intervalMs);
    this.#sweep.unref();
  }
  getUpload(repo: string, id: string) {
    return uploads.getUpload(this.#ctx, repo, id);
  }
  /**
   * A chunk that cannot be stored (disk full, read-only) ends the whole session: its bytes are
   * removed at once, so a push that failed for space leaves nothing behind.
   */
  async appendUpload(repo: string, id: string, source: Readable, opts?: { start?: number; length?: number; signal?: AbortSignal }) {
    this.#appending.add(id);
    try {
      if (opts?.length !== undefined) this.#admitOrDrain(source, opts.length, `upload ${id}`);
      return await this.disk.guard(`upload ${id}`, opts?.length ?? 0, () => uploads.appendUpload(this.#ctx, this.#hashes, repo, id, source, opts));
    } catch (err) {
      if (isDiskError(err)) await this.#dropUpload(repo, id);
      throw err;
    } finally {
      this.#appending.delete(id);
    }
  }
  async finishUpload(repo: string, id: string, digest: string) {
    try {
      return await this.disk.guard(`upload ${id}`, 0, () => uploads.finishUpload(this.#ctx, this.#hashes, repo, id, digest));
    } catch (err) {
      if (isDiskError(err)) await this.#dropUpload(repo, id);
      throw err;
    }
  }
  async #dropUpload(repo: string, id: string): Promise<void> {
    await uploads.cancelUpload(this.#ctx, this.#hashes, repo, id).catch(async (err) => {
      // The index cannot take the removal (full or read-only): the file at least goes; start-up drops the record.
      this.#ctx.log.warn({ err, id }, 'upload session record not removed after a disk error');
      await unlinkIfExists(this.#ctx.layout.uploadPath(id)).catch(() => undefined);
    });
  }
  cancelUpload(repo: string, id: string) {
    return uploads.cancelUpload(this.#ctx, this.#hashes, repo, id);
  }

  // Manifests, tags, repositories
  getManifest(repo: string, reference: string) {
    return manifests.getManifest(this.#ctx, repo, reference);
  }
  putManifest(repo: string, reference: string, content: Buffer, contentType?: string, opts?: manifests.PutManifestOptions) {
    return this.disk.guard('a manifest', content.length, () => manifests.putManifest(this.#ctx, repo, reference, content, contentType, opts));
  }
  deleteManifest(repo: string, digest: string) {
    return manifests.deleteManifest(this.#ctx, repo, digest);
  }
  deleteTag(repo: string, tag: string) {
    return manifests.deleteTag(this.#ctx, repo, tag);
  }
  repositoryExists(repo: string): boolean {
    return manifests.repositoryExists(this.#ctx, repo);
  }
  listTags(repo: string, page: { n?: number; last?: string } = {}) {
    return manifests.listTags(this.#ctx, repo, page);
  }
  tagsOf(repo: string) {
    return manifests.tagsOf(this.#ctx, repo);
  }
  listRepositories(page: { n?: number; last?: string } = {}) {
    return manifests.listRepositories(this.#ctx, page);
  }
  listReferrers(repo: string, subject: string, artifactType?: string, page?: { n?: number; last?: string }) {
    return manifests.listReferrers(this.#ctx, repo, subject, artifactType, page);
  }

  commitImage(repo: string, images: manifests.ImageManifest[], tags: string[], opts?: manifests.PutManifestOptions) {
    return this.disk.guard(`image ${repo}`, 0, () => manifests.commitImage(this.#ctx, repo, images, tags, opts));
  }
  /** Digests of the manifests linked to a repository. */
  manifestsOf(repo: string): string[] {
    return manifests.manifestsOf(this.#ctx, repo);
  }
  childrenOf(digest: string): string[] {
    return this.#ctx.db.manifests.get(digest)?.children ?? [];
  }
  /** True when a stored manifest lists the digest as its config or a layer (an index lookup). */
  isBlobReferenced(digest: string): boolean {
    return isBlobReferenced(this.#ctx, digest);
  }
  /** Config and layer digests of a stored manifest (empty for an index or an unknown digest). */
  blobsOf(digest: string): string[] {
    return this.#ctx.db.manifests.get(digest)?.blobs ?? [];
  }

  // Resumable downloads
  beginPartial(digest: string, size: number | undefined, opts?: { cache?: boolean }) {
    return this.disk.guard(`blob ${digest}`, size ?? 0, () => partials.beginPartial(this.#ctx, digest, size, opts));
  }
  /** The size a partial download of `digest` was recorded with, if one exists (a resume after a restart). */
  partialSize(digest: string): number | undefined {
    return partials.partialSize(this.#ctx, digest);
  }
  checkpointPartial(digest: string, offset: number) {
    return this.disk.guard(`blob ${digest}`, 0, () => partials.checkpointPartial(this.#ctx, digest, offset));
  }
  commitPartial(digest: string, size: number, repo?: string) {
    return this.disk.guard(`blob ${digest}`, 0, () => partials.commitPartial(this.#ctx, digest, size, repo));
  }
  discardPartial(digest: string) {
    return partials.discardPartial(this.#ctx, digest);
  }
  listPartials() {
    return partials.listPartials(this.#ctx);
  }
  /** Bytes in a download's partial file now (written, maybe not yet durable): progress for watchers. */
  partialBytes(digest: string): number | undefined {
    try {
      return statSync(this.#ctx.layout.partialPath(digest)).size;
    } catch {
      return undefined;
    }
  }

  /** The control plane's records: outbox, commands log, counters (control-state.ts). */
  get controlState(): ControlState {
    this.#control ??= new ControlState(this.#ctx.db, this.disk);
    return this.#control;
  }
  /**
   * Sync's records: desired state, applied generation, last run, per-reference state, held
   * manifests, metered bytes (sync-state.ts). Sync names the types of its own records.
   */
  syncState<T extends SyncRecordTypes = SyncRecordTypes>(): SyncState<T> {
    this.#sync ??= new SyncState(this.#ctx.db, this.disk);
    return this.#sync as SyncState<T>;
  }

  // Lifecycle of content
  /** Keeps GC away from a digest until the returned function is called. */
  pin(digest: string): () => void {
    const pins = this.#ctx.pins;
    pins.set(digest, (pins.get(digest) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (pins.get(digest) ?? 1) - 1;
      if (n <= 0) pins.delete(digest);
      else pins.set(digest, n);
    };
  }
  /** Tells GC which partial downloads are still wanted (by digest) beyond pinned and young ones. */
  keepPartials(wanted: (digest: string) => boolean): void {
    this.#ctx.keepPartial = wanted;
  }
  collectGarbage(): Promise<GcResult> {
    return this.disk.guard('garbage collection', 0, () => collectGarbage(this.#ctx));
  }
  /** What collectGarbage would remove now, and what the grace period and pins keep. */
  planGarbage(): GcPlan {
    return planGarbage(this.#ctx);
  }
  /**
   * Re-hashes every blob file; with repair, quarantines bad ones (see verify.ts). One at a time:
   * a second call while one runs (from the admin socket or a Ground Control command) is refused
   * with VERIFY_RUNNING, saying what runs and since when.
   */
  async verifyBlobs(opts?: VerifyOptions): Promise<VerifyReport> {
    const running = this.#verifying;
    if (running) {
      const secs = Math.round((Date.now() - running.startedAt) / 1000);
      throw storeError(
        StoreErrorCode.verifyRunning,
        `a blob verification${running.repair ? ' with repair' : ''} is already running (started ${secs}s ago); try again when it ends`,
        { startedAt: new Date(running.startedAt).toISOString(), repair: running.repair },
      );
    }
    this.#verifying = { startedAt: Date.now(), repair: opts?.repair === true };
    try {
      return await verifyBlobs(this.#ctx, opts);
    } finally {
      this.#verifying = undefined;
    }
  }
  /** When manifests were last pulled (the registry touches, `satellite images` reads). */
  get pulls(): PullLog {
    this.#pulls ??= new PullLog(this.#ctx);
    return this.#pulls;
  }
  /** Bytes of committed blobs (what the disk quota and reports count). */
  usage(): { blobs: number; bytes: number } {
    let count = 0;
    let bytes = 0;
    for (const { value } of scan(this.#ctx.db.blobs.getRange())) {
      count++;
      bytes += value.size;
    }
    return { blobs: count, bytes };
  }
}
