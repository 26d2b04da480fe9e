import { Fills } from '../fetch/index.ts';
import type { Logger } from 'pino';
import { SatelliteError } from '../lib/errors.ts';
import { RateLimiter } from '../lib/rate-limiter.ts';
import type { Store } from '../store/index.ts';
import type { SyncConfig } from './config-schema.ts';
import { desiredRefs, refKey, type DesiredState } from './desired-state.ts';
import type { DesiredStateSource } from './desired-state-source.ts';
import { backoffMs, downloadBlob, type DownloadDeps, type DownloadResult } from './downloader.ts';
import { SyncErrorCode, syncError } from './errors.ts';
import { admit } from './admission.ts';
import type { DiskState } from '../store/index.ts';
import type { ImageState, RunReport } from './image-state.ts';
import { Meter } from './meter.ts';
import { runSync, type RunHost } from './run.ts';
import { SyncRecords } from './records.ts';
import { DiskHold, type DiskHeldReason } from './disk-hold.ts';
import { PauseGate } from './pause-gate.ts';
import { RunScheduler } from './scheduler.ts';
import type { ApplyDeps } from './apply-image.ts';
import type { UpstreamPort } from './upstream-port.ts';
import { SyncWindows } from './windows.ts';
import { WantedBlobs, type BlobScope } from './wanted-blobs.ts';
import { ImageProgress } from './image-progress.ts';
import { bundleApplier, type AppliedSource, type BundleApplier } from './adopt.ts';

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
  /** What applied it: a sync run, or a bundle import (null: nothing applied yet). */
  appliedFrom: AppliedSource | null;
  appliedAt: string | null;
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
  readonly #runHost: RunHost;

  constructor(opts: SyncEngineOptions) {
    this.#config = opts.config;
    this.#store = opts.store;
    this.#log = opts.log;
    this.#createUpstream = opts.createUpstream;
    this.#source = opts.source;
    this.#fills = opts.fills ?? new Fills();
    this.#records = new SyncRecords(opts.store);
    // In force from construction, not only from start(): the registry and the admin socket (status,
    // a bundle import) answer before the engine starts, and must not see "no desired state".
    this.#desired = this.#records.desired();
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
    this.#runHost = {
      config: opts.config,
      store: opts.store,
      records: this.#records,
      log: opts.log,
      wanted: this.#wanted,
      progress: this.#progress,
      applyDeps: this.#applyDeps,
      diskHold: this.#diskHold,
      beginRun: () => {
        const runAbort = new AbortController();
        this.#runAbort = runAbort;
        return AbortSignal.any([this.#abort.signal, runAbort.signal]);
      },
      client: (target) => this.#client(target),
      reachable: () => this.#reachable,
      setReachable: (reachable, error) => {
        this.#reachable = reachable;
        this.#upstreamError = error;
      },
      finish: (report, doc, refs) => this.#finish(report, doc, refs),
    };
    this.#meter = new Meter(this.#records.db, opts.config.caps);
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

  /**
   * How a bundle imported into this running satellite applies its desired state (sync/adopt.ts): a
   * newer one is put in force like one from Ground Control (a run starts on it), never an older one.
   */
  bundleApplier(): BundleApplier {
    return bundleApplier({ records: this.#records, store: this.#store, current: () => this.#desired, setDesired: (s) => this.setDesiredState(s), platforms: this.#config.platforms });
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
      appliedFrom: applied?.source ?? null,
      appliedAt: applied?.at ?? null,
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

  #run(): Promise<RunReport> {
    this.#runBytes = 0;
    this.#pause.reset();
    return runSync(this.#runHost, this.#desired);
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
}
