import { Fills } from '../fetch/index.ts';
import type { Logger } from 'pino';
import { isDigest } from '../lib/digest.ts';
import { SatelliteError } from '../lib/errors.ts';
import { Limiter } from '../lib/limiter.ts';
import { RateLimiter } from '../lib/rate-limiter.ts';
import type { Store } from '../store/index.ts';
import type { SyncConfig } from './config-schema.ts';
import { desiredRefs, refKey, type DesiredRef, type DesiredState } from './desired-state.ts';
import type { DesiredStateSource } from './desired-state-source.ts';
import { backoffMs, downloadBlob, type DownloadDeps, type DownloadResult } from './downloader.ts';
import { SyncErrorCode, syncError } from './errors.ts';
import { admit } from './admission.ts';
import type { DiskState } from '../store/index.ts';
import type { ImageState, RunReport } from './image-state.ts';
import { Meter } from './meter.ts';
import { planImage, type ImagePlan } from './plan.ts';
import { pruneRemoved } from './prune.ts';
import { SyncRecords } from './records.ts';
import { DiskHold, type DiskHeldReason } from './disk-hold.ts';
import { PauseGate } from './pause-gate.ts';
import { RunScheduler } from './scheduler.ts';
import { applyImage, codeOf, refuseImage, type ApplyContext, type ApplyDeps } from './apply-image.ts';
import type { UpstreamPort } from './upstream-port.ts';
import { SyncWindows } from './windows.ts';
import { WantedBlobs, type BlobScope } from './wanted-blobs.ts';
import { ImageProgress } from './image-progress.ts';
import { decideTrust, keepSignatures } from '../trust/index.ts';

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
  /** The blob fetches in flight in this process, shared with the proxy (one fetch per digest). */
  fills?: Fills | undefined;
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
  disk: DiskState & { held: DiskHeldReason };
}

/** The upstream port's code for a network failure (src/upstream/errors.ts): reachability is in question. */
const UPSTREAM_UNREACHABLE = 'UPSTREAM_UNREACHABLE';


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
  readonly #records: SyncRecords;
  readonly #meter: Meter;
  readonly #windows: SyncWindows;
  readonly #rate: RateLimiter | undefined;
  readonly #abort = new AbortController();
  /** Aborts the run in progress when a new desired state drops references it is downloading. */
  #runAbort: AbortController | undefined;
  #desired: DesiredState | undefined;
  #upstream: { key: string; url: string; client: UpstreamPort } | undefined;
  #reachable: boolean | null = null;
  #upstreamError: string | null = null;
  readonly #pause: PauseGate;
  #failedRuns = 0;
  #runBytes = 0;
  /** Every byte read from the upstream since start, counted as it arrives (not at the end of a run). */
  #upstreamBytes = 0;
  #closed = false;
  /** Images were refused for space: runs wait until this much is available, the desired state changes, or `until`. */
  readonly #diskHold: DiskHold;
  readonly #runs: RunScheduler<RunReport>;
  readonly #runListeners = new Set<(report: RunReport) => void>();
  /** One download per digest at a time, whoever asked (a run, or a peer through fetchBlobOnRequest). */
  readonly #inflight = new Map<string, Promise<DownloadResult>>();
  /** Blobs the desired state references (as last planned): what members may ask us to fetch. */
  readonly #wanted = new WantedBlobs();
  /** Images being applied now: they read as pending with bytes done/total. */
  readonly #progress = new ImageProgress();
  readonly #fills: Fills;
  readonly #applyDeps: ApplyDeps;

  constructor(opts: SyncEngineOptions) {
    this.#config = opts.config;
    this.#store = opts.store;
    this.#log = opts.log;
    this.#createUpstream = opts.createUpstream;
    this.#source = opts.source;
    this.#fills = opts.fills ?? new Fills();
    this.#records = new SyncRecords(opts.store);
    this.#diskHold = new DiskHold(opts.store.disk, opts.log, opts.config);
    this.#runs = new RunScheduler(() => this.#run(), {
      hold: () => this.#diskHold.wait(this.#desired?.generation),
      retryMs: opts.config.intervalSeconds * 1000,
      log: opts.log,
    });
    this.#applyDeps = {
      store: opts.store,
      records: this.#records,
      concurrency: opts.config.concurrency,
      gate: (phase) => this.#gate(phase),
      download: (upstream, log, repo, want, signal) => this.#download(this.#deps(upstream, log), repo, want, signal),
    };
    this.#meter = new Meter(opts.store.metaDb<number, [string, string]>('sync-meter'), opts.config.caps);
    this.#windows = new SyncWindows(opts.config.windows ?? [], opts.config.windowTimezone);
    this.#pause = new PauseGate(this.#meter, this.#windows, opts.config.windowEnd);
    this.#rate = opts.config.bandwidthBytesPerSecond ? new RateLimiter(opts.config.bandwidthBytesPerSecond) : undefined;
    // A partial download of a blob the plan still wants survives GC (one nobody wants does not).
    opts.store.keepPartials((digest) => this.#wanted.get(digest) !== undefined);
  }

  async start(): Promise<void> {
    this.#desired = this.#records.desired();
    if (this.#desired) this.#log.info({ generation: this.#desired.generation }, 'desired state restored');
    await this.#source?.start({
      onState: (state) => void this.setDesiredState(state).catch((err) => this.#log.warn({ err }, 'desired state rejected')),
      onError: (err) => this.#log.error({ err }, 'desired state rejected; keeping the last good one'),
    });
    this.#runs.schedule(0);
  }

  /** Applies a new desired state whole; an older generation than the current one is refused. */
  async setDesiredState(state: DesiredState): Promise<void> {
    const current = this.#desired;
    if (current && state.generation < current.generation) {
      throw new SatelliteError('DESIRED_STATE_STALE', `generation ${state.generation} is older than ${current.generation}`);
    }
    if (current && state.generation === current.generation && JSON.stringify(current) === JSON.stringify(state)) return;
    await this.#records.setDesired(state);
    this.#desired = state;
    // A run still downloading for references now dropped stops (progress checkpointed): the next
    // run starts at once and removes their partials, instead of finishing bytes nobody wants.
    if (current && this.#runs.running) {
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
  /** Bytes read from the upstream since start, live: a download in progress counts as it goes. */
  get bytesFromUpstream(): number {
    return this.#upstreamBytes;
  }

  get desired(): DesiredState | undefined {
    return this.#desired;
  }

  /**
   * Manifest digests sync has committed for the references it holds (kept until pruned): the
   * pull-through cache never evicts them.
   */
  heldManifests(): Set<string> {
    return this.#records.heldManifests();
  }

  /** Asks for a run as soon as possible (after the current one, if any). */
  trigger(): void {
    this.#runs.trigger();
  }

  /**
   * Memory pressure (src/daemon/memory): with a reason, no new blob download starts (those running
   * finish, their bytes are kept); with undefined, downloads go on and a held run is started again.
   */
  holdForMemory(reason: string | undefined): void {
    this.#pause.memoryHold = reason;
    if (reason === undefined && this.#pause.heldForMemory) {
      this.#pause.heldForMemory = false;
      if (this.#pause.paused?.reason.startsWith('memory')) this.#pause.paused = null;
      if (!this.#closed) this.trigger();
    }
  }

  /** Runs a sync now (or joins the one in progress). */
  runOnce(): Promise<RunReport> {
    return this.#runs.runOnce();
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

  /** True while a download of the digest runs here (for a run, on request, or a proxy miss). */
  isDownloading(digest: string): boolean {
    return this.#inflight.has(digest) || this.#fills.get(digest) !== undefined;
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
      fills: this.#fills,
      limiter: this.#rate,
      gate: this.#gate,
      checkpointBytes: this.#config.checkpointBytes,
      attempts: this.#config.retry.attempts,
      backoffBaseMs: this.#config.retry.baseMs,
      backoffMaxMs: this.#config.retry.maxMs,
    };
  }

  status(): SyncStatus {
    const applied = this.#records.applied();
    return {
      desiredGeneration: this.#desired?.generation ?? null,
      appliedGeneration: applied?.generation ?? null,
      running: this.#runs.running !== undefined,
      upstream: { url: this.#desired?.upstream.url ?? null, reachable: this.#reachable, lastError: this.#upstreamError },
      paused: this.#pause.paused ? { reason: this.#pause.paused.reason, until: this.#pause.paused.until?.toISOString() ?? null } : null,
      nextRunAt: this.#runs.nextRunAt?.toISOString() ?? null,
      lastRun: this.#records.lastRun() ?? null,
      images: this.#progress.merge(this.#records.images(), this.#store),
      meters: this.#meter.usage(),
      partials: this.#store.listPartials(),
      disk: { ...this.#store.disk.refresh(), held: this.#diskHold.reason() },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wanted.wakeAll();
    this.#runs.stop();
    this.#abort.abort();
    await this.#runs.running?.catch(() => undefined);
    // Downloads for peers run outside runs: let them checkpoint before the store closes.
    await Promise.allSettled([...this.#inflight.values()]);
    await this.#source?.close();
    await this.#meter.flush();
    await this.#upstream?.client.close();
    this.#windows.close();
  }


  #client(target: UpstreamTarget): UpstreamPort {
    const key = JSON.stringify([target.url, target.username ?? '', target.password ?? '']);
    if (this.#upstream?.key !== key) {
      void this.#upstream?.client.close();
      const client = this.#createUpstream(target, (n) => {
        this.#runBytes += n;
        this.#upstreamBytes += n;
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
    return this.#pause.check(phase);
  };

  async #run(): Promise<RunReport> {
    const doc = this.#desired;
    const startedAt = new Date();
    this.#runBytes = 0;
    this.#pause.reset();
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
                  const held = await this.#records.dropHeld(ref);
                  ctx.replaced.set(ref.repository, new Set([...(ctx.replaced.get(ref.repository) ?? []), ...held]));
                  await refuseImage(this.#records, plan, trust, report);
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
              const p = imageSlots.run(() => applyImage(this.#applyDeps, plan, ctx)).finally(() => this.#progress.end(plan.ref));
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
    this.#diskHold.set(doc.generation, shortBy);
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

  async #prune(refs: ReturnType<typeof desiredRefs>, replaced: Map<string, Set<string>>, report: RunReport, log: Logger) {
    const keepRefs = new Set(refs.map(refKey));
    const keep = new Map<string, Set<string>>();
    for (const ref of refs) {
      const set = keep.get(ref.repository) ?? new Set<string>();
      for (const d of this.#records.held(ref)) set.add(d);
      keep.set(ref.repository, set);
    }
    const pruned = await pruneRemoved(this.#store, this.#records.synced, keep, keepRefs, replaced, log);
    report.untagged = pruned.untagged;
    report.manifestsDeleted = pruned.manifestsDeleted;
    await this.#records.keepImages(keepRefs);
    if ((pruned.untagged > 0 || pruned.manifestsDeleted > 0) && this.#config.gcAfterPrune) {
      report.gcBytesFreed = (await this.#store.collectGarbage()).bytesFreed;
    }
  }

  async #finish(report: RunReport, doc?: DesiredState, refs?: ReturnType<typeof desiredRefs>): Promise<RunReport> {
    await this.#meter.flush();
    report.finishedAt = new Date().toISOString();
    report.bytesFromUpstream = this.#runBytes;
    const allOk = refs?.every((r) => this.#records.image(refKey(r))?.status === 'ok') ?? true;
    if (doc && allOk && report.errors.length === 0) {
      await this.#records.setApplied(doc.generation, report.finishedAt);
    }
    report.result = allOk && report.errors.length === 0 ? 'ok' : this.#pause.paused ? 'paused' : this.#reachable === false ? 'offline' : 'partial';
    await this.#records.setLastRun(report);
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
    const pausedUntil = this.#pause.paused?.until;
    if (report.result === 'paused' && pausedUntil) next = Math.max(1000, pausedUntil.getTime() - Date.now());
    else if (report.result !== 'ok') next = Math.min(interval, Math.max(1000, backoffMs(this.#failedRuns, this.#config.retry.baseMs * 4, this.#config.retry.maxMs)));
    this.#runs.schedule(next);
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
  #recordSynced(plan: ImagePlan): Promise<string[]> {
    return this.#records.recordHeld(plan.ref, plan.manifests.map((m) => m.digest));
  }


  #setImage(ref: { repository: string; reference: string }, s: Parameters<SyncRecords['setImage']>[1]): Promise<void> {
    return this.#records.setImage(ref, s);
  }
}

