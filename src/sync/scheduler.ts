import type { Logger } from 'pino';

/**
 * When sync runs: never two at once, one more right after the current when asked meanwhile, on a
 * timer otherwise. `hold` can push a scheduled run back (disk full or read-only); a run that fails
 * outright is tried again after `retryMs`.
 */
export class RunScheduler<R> {
  readonly #run: () => Promise<R>;
  readonly #hold: () => number;
  readonly #retryMs: number;
  readonly #log: Logger;
  #running: Promise<R> | undefined;
  #again = false;
  #scheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** When the next scheduled run starts (null: none scheduled yet). */
  nextRunAt: Date | null = null;

  constructor(run: () => Promise<R>, opts: { hold: () => number; retryMs: number; log: Logger }) {
    this.#run = run;
    this.#hold = opts.hold;
    this.#retryMs = opts.retryMs;
    this.#log = opts.log;
  }

  /** The run in progress, if any. */
  get running(): Promise<R> | undefined {
    return this.#running;
  }

  /** Asks for a run as soon as possible (after the current one, if any). */
  trigger(): void {
    if (this.#running) this.#again = true;
    else this.schedule(0);
  }

  /** Runs now (or joins the run in progress). */
  runOnce(): Promise<R> {
    if (this.#running) return this.#running;
    clearTimeout(this.#timer);
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#closed) return;
      if (this.#again) {
        this.#again = false;
        this.schedule(0);
      }
    });
    return this.#running;
  }

  /** The next run in `ms` (replacing any scheduled one). */
  schedule(ms: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.nextRunAt = new Date(Date.now() + ms);
    this.#scheduled = true;
    this.#timer = setTimeout(() => {
      this.#scheduled = false;
      const wait = this.#hold();
      if (wait > 0) {
        this.schedule(wait);
        return;
      }
      void this.runOnce().catch((err) => {
        if (this.#closed) this.#log.info('sync run stopped');
        else if (this.#scheduled) this.#log.info('sync run superseded by a new desired state');
        else {
          this.#log.error({ err }, 'sync run failed');
          // A run that failed outright (e.g. the disk turned read-only mid-run) is tried again later, not never.
          this.schedule(this.#retryMs);
        }
      });
    }, ms);
    this.#timer.unref();
  }

  /** No more runs are started (the one in progress, if any, goes on: see `running`). */
  stop(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
