import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ImportReport } from '../bundle/import.ts';
import type { ExportReport, ExportRequest } from '../bundle/export.ts';
import type { SatelliteConfig } from '../config/index.ts';
import { SatelliteError } from '../lib/errors.ts';
import type { Store } from '../store/index.ts';
import type { SyncEngine } from '../sync/index.ts';

/**
 * Bundle imports into the running satellite, one at a time: asked over the admin socket, or found
 * by watching sync.bundleDir (a stick mounted there after start). Imports commit blobs one by one and
 * each image after its blobs, so devices keep pulling meanwhile and never see an image half.
 */
export class BundleImporter {
  readonly #config: SatelliteConfig;
  readonly #store: Store;
  readonly #sync: Pick<SyncEngine, 'bundleApplier' | 'desired'>;
  readonly #log: Logger;
  #running: { path: string; done: Promise<unknown> } | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The bundle.json (inode, size, mtime) last seen in the watched dir: a new one is imported once. */
  #seen: string | undefined;

  constructor(opts: { config: SatelliteConfig; store: Store; sync: Pick<SyncEngine, 'bundleApplier' | 'desired'>; log: Logger }) {
    this.#config = opts.config;
    this.#store = opts.store;
    this.#sync = opts.sync;
    this.#log = opts.log;
  }

  /** `repository`: for a plain OCI layout's bare-tag images; default sync.layoutRepository. */
  async import(path: string, opts: { repository?: string | undefined } = {}): Promise<ImportReport> {
    if (this.#running) throw new SatelliteError('BUNDLE_BUSY', `a bundle import is running (${this.#running.path})`);
    const run = (async () => {
      const signatures = await (await import('./bundle-keys.ts')).bundleSignatureRequirement(this.#config, this.#sync.desired);
      // The engine's applier: a newer desired state goes in force at once, and reports carry its generation.
      return (await import('../bundle/startup.ts')).importLogged(this.#store, path, {
        signatures,
        applier: this.#sync.bundleApplier(),
        repository: opts.repository ?? this.#config.sync.layoutRepository,
        log: this.#log,
      });
    })();
    this.#running = { path, done: run.catch(() => undefined) };
    try {
      return await run;
    } finally {
      this.#running = undefined;
    }
  }

  /** Writes a bundle of what the store holds; not while an import runs (nor two at once). */
  async export(req: ExportRequest): Promise<ExportReport> {
    if (this.#running) throw new SatelliteError('BUNDLE_BUSY', `a bundle operation is running (${this.#running.path})`);
    const run = (async () => (await import('../bundle/export.ts')).exportFromStore(this.#store, req, this.#log))();
    this.#running = { path: req.outDir, done: run.catch(() => undefined) };
    try {
      const report = await run;
      this.#log.info({ dir: req.outDir, images: report.images, blobs: report.blobs, bytes: report.bytes, signed: report.signed, generation: report.generation }, 'bundle exported');
      return report;
    } finally {
      this.#running = undefined;
    }
  }

  /** Polls `dir/bundle.json` (or a plain layout's index.json) every `seconds`; the one present now was imported at start. */
  async watch(dir: string, seconds: number): Promise<void> {
    this.#seen = await this.#key(dir);
    const tick = async () => {
      const key = await this.#key(dir);
      if (key === undefined || key === this.#seen || this.#running) return;
      this.#seen = key;
      this.#log.info({ dir }, 'new bundle in sync.bundleDir');
      await this.import(dir).catch((err: unknown) => this.#log.error({ err, dir }, 'bundle not imported'));
    };
    this.#timer = setInterval(() => void tick(), seconds * 1000);
    this.#timer.unref();
  }

  async #key(dir: string): Promise<string | undefined> {
    // A bundle is finished when bundle.json is there; a plain OCI layout when index.json is (skopeo writes it last).
    for (const name of ['bundle.json', 'index.json']) {
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st) return `${name}:${st.ino}:${st.size}:${st.mtimeMs}`;
    }
    return undefined;
  }

  /** Stops watching and waits for an import in flight (before the store closes). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running?.done;
  }
}
