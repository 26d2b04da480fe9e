import type { Database } from 'lmdb';
import type { StoreContext } from './context.ts';

/** Pending pulls are written at most this often: a pull costs a Map.set, not a write. */
const FLUSH_MS = 10_000;

/**
 * When each manifest was last pulled (GET, not HEAD) from each repository, for `satellite images`.
 * Times are hints: kept in memory and written in one non-durable batch every few seconds.
 */
export class PullLog {
  readonly #ctx: StoreContext;
  readonly #db: Database<number, [string, string]>;
  readonly #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
    this.#db = ctx.db.root.openDB<number, [string, string]>({ name: 'pulls' });
  }

  touch(repo: string, digest: string): void {
    this.#pending.set(`${repo}\0${digest}`, Date.now());
    if (!this.#timer) {
      this.#timer = setTimeout(() => void this.flush().catch((err) => this.#ctx.log.warn({ err }, 'cannot record pull times')), FLUSH_MS);
      this.#timer.unref();
    }
  }

  /** Last pull in ms since the epoch, or undefined if never pulled. */
  lastPulled(repo: string, digest: string): number | undefined {
    return this.#pending.get(`${repo}\0${digest}`) ?? this.#db.get([repo, digest]);
  }

  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending];
    this.#pending.clear();
    await this.#ctx.db.root.transaction(() => {
      for (const [key, at] of batch) {
        const [repo, digest] = key.split('\0') as [string, string];
        this.#db.put([repo, digest], at);
      }
    });
  }
}
