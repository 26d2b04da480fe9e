import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';
import type { MemoryConfig } from './config-schema.ts';
import { cgroupMemory, ownCgroupDir, readBytes } from './cgroup.ts';
import { memoryLimits, nextShedding, type MemoryLimits } from './limits.ts';

/** What the status endpoint, `satellite status` and the metrics show. */
export interface MemoryStatus {
  /** disabled: no limit configured; shedding: new blob streams get 429 and sync downloads wait. */
  state: 'disabled' | 'ok' | 'shedding';
  /** When the current shedding began (ISO), else null. */
  since: string | null;
  /** RSS at the last sample. */
  rssBytes: number;
  softLimitBytes: number;
  resumeBytes: number;
  /** Blob requests answered 429 for memory since start. */
  shedRequests: number;
  /** Times shedding began since start. */
  episodes: number;
  /** This process's cgroup v2 memory.current/max when readable (max null: unlimited), else null. */
  cgroup: { currentBytes: number | null; maxBytes: number | null } | null;
}

export interface MemoryWatchdogOptions {
  config: MemoryConfig;
  log: Logger;
  /** RSS in bytes; default process.memoryUsage.rss (cheap: no heap walk). */
  sample?: () => number;
  now?: () => number;
  /** A full collection; default V8's (see v8Gc), none when that is unavailable. */
  gc?: (() => void) | undefined;
  /** The cgroup directory to read memory.current/max from; default this process's, null = none. */
  cgroupDir?: string | null;
}

/**
 * While shedding, a collection again at most this often: buffers of streams that ended since are
 * given back only by a collection, and an idle process may not collect for minutes.
 */
export const GC_REPEAT_MS = 10_000;

/**
 * RSS that a collection period no longer lowers by more than this (or 1 % of the soft limit, if
 * larger) has settled: what is left is the process's floor, not garbage.
 */
export const SETTLED_BYTES = 1024 * 1024;

/**
 * Samples RSS on an unref'd timer and, above the soft limit, sheds load before the OOM killer
 * would: new blob streams get 429 (the registry asks shedBlobStream), sync starts no new blob
 * downloads (onChange), in-flight streams and manifests go on. Logs once when shedding starts
 * and once when it stops; never per request.
 */
export class MemoryWatchdog {
  readonly #config: MemoryConfig;
  readonly #log: Logger;
  readonly #sample: () => number;
  readonly #now: () => number;
  readonly #gc: (() => void) | undefined;
  readonly #cgroupDir: string | undefined;
  readonly #limits: MemoryLimits;
  readonly #listeners = new Set<(shedding: boolean) => void>();
  readonly #reclaimers = new Set<() => void>();
  #timer: NodeJS.Timeout | undefined;
  #rss = 0;
  #since: number | undefined;
  #lastGc = 0;
  /** RSS at the last collection while shedding (undefined: none yet this episode). */
  #rssAtLastGc: number | undefined;
  #warnedFloor = false;
  #shed = 0;
  #shedAtStart = 0;
  #episodes = 0;

  constructor(opts: MemoryWatchdogOptions) {
    this.#config = opts.config;
    this.#log = opts.log;
    this.#sample = opts.sample ?? (() => process.memoryUsage.rss());
    this.#now = opts.now ?? Date.now;
    this.#gc = 'gc' in opts ? opts.gc : v8Gc;
    this.#cgroupDir = opts.cgroupDir === null ? undefined : (opts.cgroupDir ?? ownCgroupDir());
    const max = this.#cgroupDir ? readBytes(`${this.#cgroupDir}/memory.max`) : undefined;
    this.#limits = memoryLimits(opts.config, max);
  }

  get limits(): MemoryLimits {
    return this.#limits;
  }

  get shedding(): boolean {
    return this.#since !== undefined;
  }

  /** Starts sampling (nothing when no limit applies). */
  start(): void {
    if (this.#limits.softBytes <= 0 || this.#timer) return;
    this.#log.info({ softLimitBytes: this.#limits.softBytes, resumeBytes: this.#limits.resumeBytes, cgroup: this.#cgroupDir ?? null }, 'memory watchdog on');
    this.tick();
    this.#timer = setInterval(() => this.tick(), this.#config.sampleIntervalMs);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Called with true when shedding starts and false when it stops. */
  onChange(listener: (shedding: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called before each collection the watchdog asks for: drop caches and pooled buffers so it can free them. */
  addReclaimer(reclaim: () => void): void {
    this.#reclaimers.add(reclaim);
  }

  /** One sample and its consequences (the timer calls this; tests call it with an injected sampler). */
  tick(): void {
    const rss = this.#sample();
    this.#rss = rss;
    const was = this.shedding;
    const now = nextShedding(was, rss, this.#limits);
    const t = this.#now();
    if (now && !was) {
      this.#since = t;
      this.#episodes++;
      this.#shedAtStart = this.#shed;
      this.#rssAtLastGc = undefined;
      this.#log.warn(
        { rssBytes: rss, softLimitBytes: this.#limits.softBytes, resumeBytes: this.#limits.resumeBytes },
        'memory above the soft limit: shedding load (429 to new blob downloads, sync downloads paused)',
      );
      this.#collect(t, rss);
      this.#emit(true);
    } else if (!now && was) {
      this.#resume(t, rss, 'memory under the resume mark: serving and syncing again');
    } else if (now && t - this.#lastGc >= GC_REPEAT_MS) {
      if (this.#settled(rss)) {
        // Under the soft limit, and a whole collection period freed nothing more: the resume mark is
        // below what this process needs idle (its configuration loads more than the board profile
        // assumed). Waiting for it would shed forever.
        if (!this.#warnedFloor) {
          this.#warnedFloor = true;
          this.#log.warn({ rssBytes: rss, resumeBytes: this.#limits.resumeBytes }, 'memory.resumeBytes is below the RSS this process settles at after collections: raise it');
        }
        this.#resume(t, rss, 'memory settled under the soft limit: serving and syncing again');
      } else {
        this.#collect(t, rss);
      }
    }
  }

  #settled(rss: number): boolean {
    if (rss > this.#limits.softBytes || this.#rssAtLastGc === undefined) return false;
    const step = Math.max(SETTLED_BYTES, Math.floor(this.#limits.softBytes / 100));
    return rss > this.#rssAtLastGc - step;
  }

  #resume(t: number, rss: number, msg: string): void {
    const seconds = Math.round((t - this.#since!) / 1000);
    this.#since = undefined;
    this.#rssAtLastGc = undefined;
    this.#log.info({ rssBytes: rss, resumeBytes: this.#limits.resumeBytes, seconds, shedRequests: this.#shed - this.#shedAtStart }, msg);
    this.#emit(false);
  }

  /** For a new blob stream: Retry-After seconds when it must wait (counted as shed), else undefined. */
  shedBlobStream(): number | undefined {
    if (!this.shedding) return undefined;
    this.#shed++;
    return this.#config.retryAfterSeconds;
  }

  status(): MemoryStatus {
    const enabled = this.#limits.softBytes > 0;
    return {
      state: !enabled ? 'disabled' : this.shedding ? 'shedding' : 'ok',
      since: this.#since === undefined ? null : new Date(this.#since).toISOString(),
      rssBytes: enabled ? this.#rss : process.memoryUsage.rss(),
      softLimitBytes: this.#limits.softBytes,
      resumeBytes: this.#limits.resumeBytes,
      shedRequests: this.#shed,
      episodes: this.#episodes,
      cgroup: this.#cgroupDir ? cgroupMemory(this.#cgroupDir) : null,
    };
  }

  #collect(t: number, rss: number): void {
    this.#lastGc = t;
    this.#rssAtLastGc = rss;
    try {
      for (const reclaim of this.#reclaimers) reclaim();
      this.#gc?.();
    } catch (err) {
      this.#log.debug({ err }, 'garbage collection request failed');
    }
  }

  #emit(shedding: boolean): void {
    for (const listener of this.#listeners) {
      try {
        listener(shedding);
      } catch (err) {
        this.#log.error({ err }, 'memory listener failed');
      }
    }
  }
}

let v8GcFn: (() => void) | null | undefined;

/**
 * A full V8 collection without starting node with --expose-gc: the flag is set for the moment of
 * creating one context, whose `gc` function is kept, and unset again so no other code sees a
 * global gc. Without it, nothing happens (the collector runs on its own schedule).
 */
export function v8Gc(): void {
  const fromFlag = (globalThis as { gc?: () => void }).gc;
  if (typeof fromFlag === 'function') return fromFlag();
  if (v8GcFn === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const fn: unknown = runInNewContext('gc');
      v8GcFn = typeof fn === 'function' ? (fn as () => void) : null;
    } catch {
      v8GcFn = null;
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  }
  v8GcFn?.();
}
