import type { Database } from 'lmdb';
import type { Logger } from 'pino';
import { isDigest } from '../lib/digest.ts';
import { isSatelliteError, SatelliteError } from '../lib/errors.ts';
import { Limiter } from '../lib/limiter.ts';
import { RateLimiter } from '../lib/rate-limiter.ts';
import type { Store } from '../store/index.ts';
import type { SyncConfig } from './config-schema.ts';
import { desiredRefs, refKey, type DesiredRef, type DesiredState } from './desired-state.ts';
import type { DesiredStateSource } from './desired-state-source.ts';
import { backoffMs, downloadBlob, type DownloadDeps, type DownloadResult } from './downloader.ts';
import { SyncErrorCode, syncError } from './errors.ts';
import { admit, diskFullDetail } from './admission.ts';
import { isDiskError, type DiskState } from '../store/index.ts';
import type { ImageState, RunReport } from './image-state.ts';
import { Meter } from './meter.ts';
import { planImage, type ImagePlan } from './plan.ts';
import { pruneRemoved, type SyncedRefs } from './prune.ts';
import type { UpstreamPort } from './upstream-port.ts';
import { SyncWindows } from './windows.ts';
import { WantedBlobs, type BlobScope } from './wanted-blobs.ts';
import { ImageProgress } from './image-progress.ts';
import { decideTrust, keepSignatures, type TrustDecision } from '../trust/index.ts';

export interface UpstreamTarget {
  url: string;
  username?: string;
  password?: string;
}

export interface SyncEngineOptions {
  config: SyncConfig;
  store: Store;
  log: Logger;
  /** Builds a client for the upstream the desired state names; meter sees every byte read. */
  createUpstream: (target: UpstreamTarget, meter: (bytes: number) => void) => UpstreamPort;
  source?: DesiredStateSource | undefined;
}

export interface SyncStatus {
  desiredGeneration: number | null;
  appliedGeneration: number | null;
  running: boolean;
  upstream: { url: string | null; reachable: boolean | null; lastError: string | null };
  paused: { reason: string; until: string | null } | null;
  nextRunAt: string | null;
  lastRun: RunReport | null;
  images: ImageState[];
  meters: ReturnType<Meter['usage']>;
  partials: Array<{ digest: string; offset: number; size: number }>;
  /** Free space and its condition; `held` while runs wait for space (DISK_FULL) or a writable disk. */
  disk: DiskState & { held: { reason: string; bytesNeeded: number | null; until: string | null } | null };
}

/** Blobs under this size are latency-bound: fetched under sync.planConcurrency, not sync.concurrency. */
const SMALL_BLOB_BYTES = 1024 * 1024;
/** The upstream port's code for a network failure (src/upstream/errors.ts): reachability is in question. */
const UPSTREAM_UNREACHABLE = 'UPSTREAM_UNREACHABLE';

/** What the images of one run share while they are applied side by side. */
interface ApplyContext {
  upstream: UpstreamPort;
  /** The desired state's signature policy, if any. */
  trust: DesiredState['trust'];
  report: RunReport;
  log: Logger;
  signal: AbortSignal;
  /** Manifests that references no longer hold, per repository (pruned after the run). */
  replaced: Map<string, Set<string>>;
  /** Bytes each image refused for space was short by. */
  shortBy: number[];
  largeSlots: Limiter;
  smallSlots: Limiter;
  /** Images downloading now; each settles (never rejects) after its reservation is released. */
  downloading: Set<Promise<void>>;
  /** Partials admission may not drop (known once every reference is planned). */
  keep: () => ReadonlySet<string> | undefined;
}

/**
 * Turns "these images should be here" into "they are here, verified". Runs never overlap; a run is
 * triggered by a new desired state, by the interval, and by retries with backoff after failures.
 */
export class SyncEngine {
  readonly #config: SyncConfig;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #createUpstream: SyncEngineOptions['createUpstream'];
  readonly #source: DesiredStateSource | undefined;
  readonly #state: Database<unknown, string>;
  readonly #images: Database<ImageState, string>;
  readonly #synced: SyncedRefs;
  readonly #meter: Meter;
  readonly #windows: SyncWindows;
  readonly #rate: RateLimiter | undefined;
  readonly #abort = new AbortController();
  /** Aborts the run in progress when a new desired state drops references it is downloading. */
  #runAbort: AbortController | undefined;
  #scheduled = false;
  #desired: DesiredState | undefined;
  #upstream: { key: string; url: string; client: UpstreamPort } | undefined;
  #reachable: boolean | null = null;
  #upstreamError: string | null = null;
  #paused: { reason: string; until: Date | null } | null = null;
  /** Set while memory is above the watchdog's soft limit: no new blob download starts. */
  #memoryHold: string | undefined;
  /** A download was held for memory: the release starts a run at once. */
  #heldForMemory = false;
  #running: Promise<RunReport> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #nextRunAt: Date | null = null;
  #failedRuns = 0;
  #runBytes = 0;
  #closed = false;
  /** Images were refused for space: runs wait until this much is available, the desired state changes, or `until`. */
  #diskHold: { generation: number; bytesNeeded: number; until: number } | undefined;
  readonly #runListeners = new Set<(report: RunReport) => void>();
  /** One download per digest at a time, whoever asked (a run, or a peer through fetchBlobOnRequest). */
  readonly #inflight = new Map<string, Promise<DownloadResult>>();
  /** Blobs the desired state references (as last planned): what members may ask us to fetch. */
  readonly #wanted = new WantedBlobs();
  /** Images being applied now: they read as pending with bytes done/total. */
  readonly #progress = new ImageProgress();

  constructor(opts: SyncEngineOptions) {
    this.#config = opts.config;
    this.#store = opts.store;
    this.#log = opts.log;
    this.#createUpstream = opts.createUpstream;
    this.#source = opts.source;
    this.#state = opts.store.metaDb<unknown>('sync-state');
    this.#images = opts.store.metaDb<ImageState>('sync-images');
    this.#synced = opts.store.metaDb<{ digests: string[] }, [string, string]>('sync-refs');
    this.#meter = new Meter(opts.store.metaDb<number, [string, string]>('sync-meter'), opts.config.caps);
    this.#windows = new SyncWindows(opts.config.windows ?? [], opts.config.windowTimezone);
    this.#rate = opts.config.bandwidthBytesPerSecond ? new RateLimiter(opts.config.bandwidthBytesPerSecond) : undefined;
    // A partial download of a blob the plan still wants survives GC (one nobody wants does not).
    opts.store.keepPartials((digest) => this.#wanted.get(digest) !== undefined);
  }

  async start(): Promise<void> {
    this.#desired = this.#state.get('desired') as DesiredState | undefined;
    if (this.#desired) this.#log.info({ generation: this.#desired.generation }, 'desired state restored');
    await this.#source?.start({
      onState: (state) => void this.setDesiredState(state).catch((err) => this.#log.warn({ err }, 'desired state rejected')),
      onError: (err) => this.#log.error({ err }, 'desired state rejected; keeping the last good one'),
    });
    this.#schedule(0);
  }

  /** Applies a new desired state whole; an older generation than the current one is refused. */
  async setDesiredState(state: DesiredState): Promise<void> {
    const current = this.#desired;
    if (current && state.generation < current.generation) {
      throw new SatelliteError('DESIRED_STATE_STALE', `generation ${state.generation} is older than ${current.generation}`);
    }
    if (current && state.generation === current.generation && JSON.stringify(current) === JSON.stringify(state)) return;
    await this.#store.metaTransaction(() => this.#state.put('desired', state));
    this.#desired = state;
    // A run still downloading for references now dropped stops (progress checkpointed): the next
    // run starts at once and removes their partials, instead of finishing bytes nobody wants.
    if (current && this.#running) {
      const now = new Set(desiredRefs(state, this.#config.platforms).map(refKey));
      if (desiredRefs(current, this.#config.platforms).some((r) => !now.has(refKey(r)))) this.#runAbort?.abort();
    }
    this.#log.info({ generation: state.generation, images: state.images.length }, 'desired state accepted');
    this.trigger();
  }

  /** Called after every run (for state reports); returns an unsubscribe function. */
  onRun(listener: (report: RunReport) => void): () => void {
    this.#runListeners.add(listener);
    return () => this.#runListeners.delete(listener);
  }

  /** The desired state in force, if any. */
  get desired(): DesiredState | undefined {
    return this.#desired;
  }

  /**
   * Manifest digests sync has committed for the references it holds (kept until pruned): the
   * pull-through cache never evicts them.
   */
  heldManifests(): Set<string> {
    const out = new Set<string>();
    for (const { value } of this.#synced.getRange()) for (const d of value.digests) out.add(d);
    return out;
  }

  /** Asks for a run as soon as possible (after the current one, if any). */
  trigger(): void {
    if (this.#running) this.#again = true;
    else this.#schedule(0);
  }

  /**
   * Memory pressure (src/daemon/memory): with a reason, no new blob download starts (those running
   * finish, their bytes are kept); with undefined, downloads go on and a held run is started again.
   */
  holdForMemory(reason: string | undefined): void {
    this.#memoryHold = reason;
    if (reason === undefined && this.#heldForMemory) {
      this.#heldForMemory = false;
      if (this.#paused?.reason.startsWith('memory')) this.#paused = null;
      if (!this.#closed) this.trigger();
    }
  }

  /** Runs a sync now (or joins the one in progress). */
  runOnce(): Promise<RunReport> {
    if (this.#running) return this.#running;
    clearTimeout(this.#timer);
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#closed) return;
      if (this.#again) {
        this.#again = false;
        this.#schedule(0);
      }
    });
    return this.#running;
  }

  /**
   * Downloads one blob now, outside a run (a peer at the site asked for it): from the upstream of
   * the desired state in force, with the same verification, caps and windows. Joins a download of
   * the same digest already in progress. Rejects when there is no desired state yet.
   */
  async fetchBlobOnRequest(digest: string, signal: AbortSignal): Promise<DownloadResult> {
    // A site gets one desired state at once; a member may ask a moment before ours is planned.
    const deadline = Date.now() + 10_000;
    let want = this.#wanted.get(digest);
    while (!want && !this.#closed && !signal.aborted && Date.now() < deadline && this.blobScope(digest) === 'pending') {
      await this.#wanted.planned(signal, deadline - Date.now());
      want = this.#wanted.get(digest);
    }
    const doc = this.#desired;
    if (!doc || this.#closed) throw syncError(SyncErrorCode.stopped, 'no desired state: no upstream to fetch from');
    // Never what the asker names: only a blob of our own images, from the repository our manifest names.
    if (!want) throw syncError(SyncErrorCode.notWanted, `${digest} is not a blob of this satellite's desired state`);
    const held = this.#gate('start');
    if (held) throw held;
    const any = AbortSignal.any([signal, this.#abort.signal]);
    // Joining a download in flight needs no room of its own: its space is already reserved.
    const release = this.#inflight.has(digest) ? () => undefined : await admit(this.#store, [{ digest, size: want.size }], `blob ${digest}`, this.#log);
    try {
      return await this.#download(this.#deps(this.#client(doc.upstream), this.#log), want.repo, { digest, size: want.size }, any);
    } finally {
      release();
    }
  }

  /**
   * Whether the desired state references a blob (cheap, in memory): 'wanted', 'no', or 'pending'
   * while the newest desired state is not planned yet.
   */
  blobScope(digest: string): BlobScope {
    return this.#wanted.scope(digest, this.#desired?.generation, this.#source !== undefined);
  }

  /** True while a download of the digest runs here (for a run or on request). */
  isDownloading(digest: string): boolean {
    return this.#inflight.has(digest);
  }

  #download(deps: DownloadDeps, repo: string, want: { digest: string; size: number }, signal: AbortSignal): Promise<DownloadResult> {
    const running = this.#inflight.get(want.digest);
    if (running) return running;
    // Fetched meanwhile (for a peer, or by an earlier caller): nothing to do.
    if (this.#store.hasBlob(want.digest)) return Promise.resolve({ digest: want.digest, size: want.size, resumedFrom: 0, bytesReceived: 0 });
    const p = downloadBlob(deps, repo, want, signal).finally(() => this.#inflight.delete(want.digest));
    this.#inflight.set(want.digest, p);
    return p;
  }

  #deps(upstream: UpstreamPort, log: Logger): DownloadDeps {
    return {
      store: this.#store,
      upstream,
      log,
      limiter: this.#rate,
      gate: this.#gate,
      checkpointBytes: this.#config.checkpointBytes,
      attempts: this.#config.retry.attempts,
      backoffBaseMs: this.#config.retry.baseMs,
      backoffMaxMs: this.#config.retry.maxMs,
    };
  }

  status(): SyncStatus {
    const applied = this.#state.get('applied') as { generation: number } | undefined;
    return {
      desiredGeneration: this.#desired?.generation ?? null,
      appliedGeneration: applied?.generation ?? null,
      running: this.#running !== undefined,
      upstream: { url: this.#desired?.upstream.url ?? null, reachable: this.#reachable, lastError: this.#upstreamError },
      paused: this.#paused ? { reason: this.#paused.reason, until: this.#paused.until?.toISOString() ?? null } : null,
      nextRunAt: this.#nextRunAt?.toISOString() ?? null,
      lastRun: (this.#state.get('lastRun') as RunReport | undefined) ?? null,
      images: this.#progress.merge([...this.#images.getRange()].map((e) => e.value), this.#store),
      meters: this.#meter.usage(),
      partials: this.#store.listPartials(),
      disk: { ...this.#store.disk.refresh(), held: this.#heldReason() },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wanted.wakeAll();
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#running?.catch(() => undefined);
    // Downloads for peers run outside runs: let them checkpoint before the store closes.
    await Promise.allSettled([...this.#inflight.values()]);
    await this.#source?.close();
    await this.#meter.flush();
    await this.#upstream?.client.close();
    this.#windows.close();
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#nextRunAt = new Date(Date.now() + ms);
    this.#scheduled = true;
    this.#timer = setTimeout(() => {
      this.#scheduled = false;
      const wait = this.#diskWait();
      if (wait > 0) {
        this.#schedule(wait);
        return;
      }
      void this.runOnce().catch((err) => {
        if (this.#closed) this.#log.info('sync run stopped');
        else if (this.#scheduled) this.#log.info('sync run superseded by a new desired state');
        else {
          this.#log.error({ err }, 'sync run failed');
          // A run that failed outright (e.g. the disk turned read-only mid-run) is tried again later, not never.
          this.#schedule(this.#config.intervalSeconds * 1000);
        }
      });
    }, ms);
    this.#timer.unref();
  }

  /**
   * Milliseconds to wait before a scheduled run may spend WAN: while the disk is read-only, or while
   * images wait for space that has not been freed (0 = run now). New desired state ends the wait.
   */
  #diskWait(): number {
    const interval = this.#config.intervalSeconds * 1000;
    const disk = this.#store.disk.refresh();
    if (disk.condition === 'read-only') return interval;
    const hold = this.#diskHold;
    if (!hold) return 0;
    const now = Date.now();
    if (this.#desired?.generation !== hold.generation || now >= hold.until || this.#store.disk.available() >= hold.bytesNeeded) {
      this.#diskHold = undefined;
      return 0;
    }
    this.#log.debug({ bytesNeeded: hold.bytesNeeded, availableBytes: this.#store.disk.available() }, 'sync held: waiting for disk space');
    return Math.min(interval, hold.until - now);
  }

  #heldReason(): SyncStatus['disk']['held'] {
    if (this.#store.disk.readOnly) return { reason: 'STORE_READ_ONLY', bytesNeeded: null, until: null };
    const hold = this.#diskHold;
    return hold ? { reason: 'DISK_FULL', bytesNeeded: hold.bytesNeeded, until: new Date(hold.until).toISOString() } : null;
  }

  #client(target: UpstreamTarget): UpstreamPort {
    const key = JSON.stringify([target.url, target.username ?? '', target.password ?? '']);
    if (this.#upstream?.key !== key) {
      void this.#upstream?.client.close();
      const client = this.#createUpstream(target, (n) => {
        this.#runBytes += n;
        this.#meter.add(n);
      });
      this.#upstream = { key, url: target.url, client };
      // Reachability was that of the previous upstream: the next run probes this one.
      this.#reachable = null;
    }
    return this.#upstream.client;
  }

  /** Why downloads must wait now, if they must. */
  #gate = (phase: 'start' | 'stream'): SatelliteError | undefined => {
    if (this.#closed) return syncError(SyncErrorCode.stopped, 'satellite is stopping');
    const cap = this.#meter.capReached();
    if (cap) {
      this.#paused = { reason: `${cap.period} data cap of ${cap.limit} bytes reached`, until: cap.resetsAt };
      return syncError(SyncErrorCode.paused, this.#paused.reason, cap);
    }
    if (this.#memoryHold !== undefined && phase === 'start') {
      this.#heldForMemory = true;
      this.#paused = { reason: this.#memoryHold, until: null };
      return syncError(SyncErrorCode.paused, this.#paused.reason);
    }
    if (!this.#windows.isOpen() && (phase === 'start' || this.#config.windowEnd === 'pause')) {
      const ms = this.#windows.msUntilOpen();
      this.#paused = { reason: 'outside the sync window', until: ms === undefined ? null : new Date(Date.now() + ms) };
      return syncError(SyncErrorCode.paused, this.#paused.reason);
    }
    return undefined;
  };

  async #run(): Promise<RunReport> {
    const doc = this.#desired;
    const startedAt = new Date();
    this.#runBytes = 0;
    this.#paused = null;
    const report: RunReport = {
      generation: doc?.generation ?? 0,
      startedAt: startedAt.toISOString(),
      finishedAt: '',
      result: 'ok',
      bytesFromUpstream: 0,
      blobsFetched: 0,
      blobsResumed: 0,
      untagged: 0,
      manifestsDeleted: 0,
      gcBytesFreed: 0,
      errors: [],
    };
    if (!doc) return this.#finish(report);
    const runAbort = new AbortController();
    this.#runAbort = runAbort;
    const signal = AbortSignal.any([this.#abort.signal, runAbort.signal]);
    const log = this.#log.child({ generation: doc.generation });
    const refs = desiredRefs(doc, this.#config.platforms);
    const upstream = this.#client(doc.upstream);
    const started = performance.now();

    // The /v2/ probe costs a round trip: while the last run reached the upstream it is skipped (the
    // plan's own requests tell), and asked only when a reference fails to resolve on the network.
    let probed = false;
    if (this.#reachable !== true) {
      probed = true;
      await this.#probe(upstream, report, log, signal);
    }

    // Pipelined: references resolve concurrently (sync.planConcurrency), and each image starts
    // downloading as soon as its plan is known, not after the whole plan.
    const failures: Array<{ ref: DesiredRef; err: unknown }> = [];
    const wanted = new Set<string>();
    let planned = this.#reachable === true;
    const ctx: ApplyContext = {
      upstream,
      trust: doc.trust,
      report,
      log,
      signal,
      replaced: new Map(),
      shortBy: [],
      largeSlots: new Limiter(this.#config.concurrency),
      smallSlots: new Limiter(this.#config.planConcurrency),
      downloading: new Set(),
      keep: () => undefined,
    };
    const imageSlots = new Limiter(this.#config.planConcurrency);
    const applying: Array<Promise<void>> = [];
    let transferStart: number | undefined;
    report.unchanged = 0;
    this.#wanted.begin();
    try {
      if (this.#reachable) {
        await upstream.prepare?.([...new Set(refs.map((r) => r.repository))]);
        const planSlots = new Limiter(this.#config.planConcurrency);
        await Promise.all(
          refs.map((ref) =>
            planSlots.run(async () => {
              if (signal.aborted) return;
              let plan: ImagePlan;
              try {
                plan = await planImage(upstream, this.#store, ref, log, signal);
              } catch (err) {
                if (!signal.aborted) failures.push({ ref, err });
                return;
              }
              this.#wanted.add(ref.repository, plan.blobs);
              if (plan.upToDate) {
                report.unchanged!++;
                // Checked again every run: a key rotated out in the desired state stops an image it signed.
                const trust = await decideTrust(upstream, doc.trust, { repository: ref.repository, digest: plan.digest }, log, signal);
                if (trust?.refused) {
                  // Withdrawn whole: the tag now, its manifests by the prune below (no pull by digest either).
                  if (!isDigest(ref.reference)) await this.#store.deleteTag(ref.repository, ref.reference);
                  const held = this.#synced.get([ref.repository, ref.reference])?.digests ?? [];
                  await this.#store.metaTransaction(() => this.#synced.remove([ref.repository, ref.reference]));
                  ctx.replaced.set(ref.repository, new Set([...(ctx.replaced.get(ref.repository) ?? []), ...held]));
                  await this.#refuse(plan, trust, report);
                  return;
                }
                await keepSignatures(this.#store, ref.repository, trust, log);
                await this.#recordSynced(plan);
                await this.#setImage(ref, { status: 'ok', digest: plan.digest, ...trust?.fields });
                return;
              }
              for (const b of plan.blobs) wanted.add(b.digest);
              transferStart ??= performance.now();
              this.#progress.begin(plan.ref, plan.blobs);
              const p = imageSlots.run(() => this.#apply(plan, ctx)).finally(() => this.#progress.end(plan.ref));
              p.catch(() => undefined); // awaited below; handled here so an early failure is not "unhandled"
              applying.push(p);
            }),
          ),
        );
        signal.throwIfAborted();
        if (!probed && failures.some((f) => codeOf(f.err) === UPSTREAM_UNREACHABLE)) {
          await this.#probe(upstream, report, log, signal);
        }
        if (failures.length > 0) planned = false;
        // Upstream gone: like a failed probe, the images keep their state (served as stored).
        if (this.#reachable) {
          for (const { ref, err } of failures) {
            report.errors.push({ ref: refKey(ref), code: codeOf(err), message: (err as Error).message });
            await this.#setImage(ref, { status: 'failed', code: codeOf(err), reason: (err as Error).message });
          }
        }
      }
    } catch (err) {
      await Promise.allSettled(applying);
      throw err;
    } finally {
      // An image that could not be resolved keeps what the last plan wanted of it.
      this.#wanted.end(doc.generation, planned);
    }
    report.resolveMs = Math.round(performance.now() - started);
    log.debug({ resolveMs: report.resolveMs, refs: refs.length, unchanged: report.unchanged }, 'plan resolved');

    // Partials of images no longer desired go (only when every reference resolved: a reference
    // that failed to plan may still want its partial). Downloads in flight are all in `wanted`.
    if (planned) {
      ctx.keep = () => wanted;
      await this.#store.discardOrphanPartials(wanted);
    }
    const results = await Promise.allSettled(applying);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (transferStart !== undefined) report.transferMs = Math.round(performance.now() - transferStart);
    const { replaced, shortBy } = ctx;
    this.#diskHold = shortBy.length > 0 ? { generation: doc.generation, bytesNeeded: Math.min(...shortBy), until: Date.now() + this.#config.diskFullRetrySeconds * 1000 } : undefined;
    await this.#prune(refs, replaced, report, log);
    return this.#finish(report, doc, refs);
  }

  /** GET /v2/: sets reachability; a failure is the run's error and nothing is planned. */
  async #probe(upstream: UpstreamPort, report: RunReport, log: Logger, signal: AbortSignal): Promise<void> {
    try {
      await upstream.ping(signal);
      this.#reachable = true;
      this.#upstreamError = null;
    } catch (err) {
      if (signal.aborted) throw err;
      this.#reachable = false;
      this.#upstreamError = (err as Error).message;
      log.warn({ err: (err as Error).message, upstream: this.#desired?.upstream.url }, 'upstream unreachable; serving what is stored');
      report.errors.push({ code: codeOf(err), message: (err as Error).message });
    }
  }

  /**
   * One image: its blobs admitted by free space and downloaded, then committed and served. Images
   * run side by side (each starts when its plan is known); the reservations of images still
   * downloading may count a shared layer twice, so an image refused for space waits for one of
   * them to end and asks again, and is refused only when nothing else is downloading.
   */
  async #apply(plan: ImagePlan, c: ApplyContext): Promise<void> {
    const { report, log, signal } = c;
    signal.throwIfAborted();
    let release: () => void;
    for (;;) {
      try {
        release = await admit(this.#store, plan.blobs, `image ${refKey(plan.ref)}`, log, c.keep());
        break;
      } catch (err) {
        if (signal.aborted || !isDiskError(err)) throw err;
        if (c.downloading.size > 0) {
          await Promise.race(c.downloading);
          continue;
        }
        const d = diskFullDetail(err);
        if (d) c.shortBy.push(d.bytesNeeded);
        log.warn({ ref: refKey(plan.ref), code: codeOf(err), ...d }, 'image waits for disk space; nothing downloaded');
        await this.#setImage(plan.ref, { status: 'failed', code: codeOf(err), reason: (err as Error).message, ...d });
        report.errors.push({ ref: refKey(plan.ref), code: codeOf(err), message: (err as Error).message });
        return;
      }
    }
    const task = (async () => {
      try {
        return await this.#downloadAll([plan], c.upstream, report, log, signal, c);
      } finally {
        release();
      }
    })();
    const tracked: Promise<void> = task.then(
      () => undefined,
      () => undefined,
    ).finally(() => c.downloading.delete(tracked));
    c.downloading.add(tracked);
    const blobErrors = await task;
    // Stopping: downloads are checkpointed; record nothing as failed for a run cut short.
    signal.throwIfAborted();
    const missing = plan.blobs.find((b) => !this.#store.hasBlob(b.digest));
    if (missing) {
      const err = blobErrors.get(missing.digest);
      const paused = err && isSatelliteError(err, SyncErrorCode.paused);
      const d = diskFullDetail(err);
      if (d) c.shortBy.push(d.bytesNeeded);
      await this.#setImage(plan.ref, {
        status: paused ? 'pending' : 'failed',
        code: err ? codeOf(err) : 'BLOB_MISSING',
        reason: err ? err.message : `blob ${missing.digest} not downloaded`,
        ...d,
      });
      if (!paused) report.errors.push({ ref: refKey(plan.ref), digest: missing.digest, code: err ? codeOf(err) : 'BLOB_MISSING', message: err?.message ?? 'not downloaded' });
      return;
    }
    const { repository, reference } = plan.ref;
    let trust: TrustDecision | undefined;
    try {
      trust = await decideTrust(c.upstream, c.trust, { repository, digest: plan.digest }, log, signal);
    } catch (err) {
      signal.throwIfAborted();
      await this.#setImage(plan.ref, { status: 'failed', code: codeOf(err), reason: `signature check: ${(err as Error).message}` });
      report.errors.push({ ref: refKey(plan.ref), code: codeOf(err), message: (err as Error).message });
      return;
    }
    if (trust?.refused) {
      await this.#refuse(plan, trust, report);
      return;
    }
    await this.#store.commitImage(repository, plan.manifests, isDigest(reference) ? [] : [reference], { allowMissingChildren: true, linkStoredBlobs: true });
    const old = await this.#recordSynced(plan);
    if (old.length > 0) c.replaced.set(repository, new Set([...(c.replaced.get(repository) ?? []), ...old]));
    await keepSignatures(this.#store, repository, trust, log);
    await this.#setImage(plan.ref, { status: 'ok', digest: plan.digest, ...trust?.fields });
    log.info({ repository, reference, digest: plan.digest }, 'image synced');
  }

  async #downloadAll(
    plans: ImagePlan[],
    upstream: UpstreamPort,
    report: RunReport,
    log: Logger,
    signal: AbortSignal,
    slots?: { largeSlots: Limiter; smallSlots: Limiter },
  ): Promise<Map<string, Error>> {
    const needed = new Map<string, { repo: string; size: number }>();
    for (const plan of plans) {
      for (const b of plan.blobs) {
        if (!this.#store.hasBlob(b.digest) && !needed.has(b.digest)) needed.set(b.digest, { repo: plan.ref.repository, size: b.size });
      }
    }
    const errors = new Map<string, Error>();
    if (needed.size === 0) return errors;
    const deps = this.#deps(upstream, log);
    const large = slots?.largeSlots ?? new Limiter(this.#config.concurrency);
    // A small blob (an image config, a thin layer) costs a round trip, not bandwidth: it is fetched
    // under the plan's concurrency, like a manifest; large ones share sync.concurrency.
    const small = slots?.smallSlots ?? large;
    await Promise.all(
      [...needed].map(([digest, { repo, size }]) =>
        (size < SMALL_BLOB_BYTES ? small : large).run(async () => {
          try {
            const held = this.#gate('start');
            if (held) throw held;
            const result = await this.#download(deps, repo, { digest, size }, signal);
            report.blobsFetched++;
            if (result.resumedFrom > 0) report.blobsResumed++;
          } catch (err) {
            if (signal.aborted) return;
            errors.set(digest, err as Error);
            if (!isSatelliteError(err, SyncErrorCode.paused)) log.warn({ digest, err: (err as Error).message, code: codeOf(err) }, 'blob download failed');
          }
        }),
      ),
    );
    return errors;
  }

  async #prune(refs: ReturnType<typeof desiredRefs>, replaced: Map<string, Set<string>>, report: RunReport, log: Logger) {
    const keepRefs = new Set(refs.map(refKey));
    const keep = new Map<string, Set<string>>();
    for (const ref of refs) {
      const rec = this.#synced.get([ref.repository, ref.reference]);
      const set = keep.get(ref.repository) ?? new Set<string>();
      for (const d of rec?.digests ?? []) set.add(d);
      keep.set(ref.repository, set);
    }
    const pruned = await pruneRemoved(this.#store, this.#synced, keep, keepRefs, replaced, log);
    report.untagged = pruned.untagged;
    report.manifestsDeleted = pruned.manifestsDeleted;
    for (const { key } of this.#images.getRange()) {
      if (!keepRefs.has(key)) await this.#store.metaTransaction(() => this.#images.remove(key));
    }
    if ((pruned.untagged > 0 || pruned.manifestsDeleted > 0) && this.#config.gcAfterPrune) {
      report.gcBytesFreed = (await this.#store.collectGarbage()).bytesFreed;
    }
  }

  async #finish(report: RunReport, doc?: DesiredState, refs?: ReturnType<typeof desiredRefs>): Promise<RunReport> {
    await this.#meter.flush();
    report.finishedAt = new Date().toISOString();
    report.bytesFromUpstream = this.#runBytes;
    const allOk = refs?.every((r) => this.#images.get(refKey(r))?.status === 'ok') ?? true;
    if (doc && allOk && report.errors.length === 0) {
      await this.#store.metaTransaction(() => this.#state.put('applied', { generation: doc.generation, at: report.finishedAt }));
    }
    report.result = allOk && report.errors.length === 0 ? 'ok' : this.#paused ? 'paused' : this.#reachable === false ? 'offline' : 'partial';
    await this.#store.metaTransaction(() => this.#state.put('lastRun', report));
    // Without a desired state there was nothing to do: no "sync finished generation 0" at info.
    this.#log[doc ? 'info' : 'debug'](
      {
        generation: report.generation,
        result: report.result,
        bytesFromUpstream: report.bytesFromUpstream,
        blobsFetched: report.blobsFetched,
        blobsResumed: report.blobsResumed,
        unchanged: report.unchanged,
        resolveMs: report.resolveMs,
        transferMs: report.transferMs,
        errors: report.errors.length,
      },
      'sync finished',
    );
    this.#failedRuns = report.result === 'ok' ? 0 : this.#failedRuns + 1;
    const interval = this.#config.intervalSeconds * 1000;
    let next = interval;
    if (report.result === 'paused' && this.#paused?.until) next = Math.max(1000, this.#paused.until.getTime() - Date.now());
    else if (report.result !== 'ok') next = Math.min(interval, Math.max(1000, backoffMs(this.#failedRuns, this.#config.retry.baseMs * 4, this.#config.retry.maxMs)));
    this.#schedule(next);
    for (const listener of this.#runListeners) {
      try {
        listener(report);
      } catch (err) {
        this.#log.error({ err }, 'run listener failed');
      }
    }
    return report;
  }

  /** Remembers which manifests a reference holds (so prune keeps them); returns the ones it no longer holds. */
  async #recordSynced(plan: ImagePlan): Promise<string[]> {
    const key: [string, string] = [plan.ref.repository, plan.ref.reference];
    const previous = this.#synced.get(key)?.digests ?? [];
    const digests = plan.manifests.map((m) => m.digest);
    if (previous.length !== digests.length || previous.some((d, i) => d !== digests[i])) {
      await this.#store.metaTransaction(() => this.#synced.put(key, { digests }));
    }
    return previous.filter((d) => !digests.includes(d));
  }

  /** Enforce refused the image: failed with SIGNATURE_REQUIRED / SIGNATURE_INVALID, nothing committed. */
  async #refuse(plan: ImagePlan, trust: TrustDecision, report: RunReport): Promise<void> {
    const refused = trust.refused!;
    await this.#setImage(plan.ref, { status: 'failed', digest: plan.digest, ...trust.fields, code: refused.code, reason: refused.reason });
    report.errors.push({ ref: refKey(plan.ref), digest: plan.digest, code: refused.code, message: refused.reason });
  }

  async #setImage(ref: { repository: string; reference: string }, s: Omit<ImageState, 'repository' | 'reference' | 'updatedAt' | 'lastOkAt'>) {
    const key = refKey(ref);
    const prev = this.#images.get(key);
    const now = new Date().toISOString();
    const next: ImageState = { repository: ref.repository, reference: ref.reference, ...s, updatedAt: now };
    if (s.status === 'ok') next.lastOkAt = now;
    else if (prev?.lastOkAt) next.lastOkAt = prev.lastOkAt;
    // A failed refresh of an image we still hold keeps its digest on record.
    if (s.status !== 'ok' && prev?.digest && next.digest === undefined) next.digest = prev.digest;
    await this.#store.metaTransaction(() => this.#images.put(key, next));
  }
}

function codeOf(err: unknown): string {
  return isSatelliteError(err) ? err.code : 'INTERNAL';
}
