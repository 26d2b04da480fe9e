import { Fill, type FillOptions } from './fill.ts';

/**
 * The fills in flight, one per digest, shared by everyone in the process who needs a blob (sync
 * runs, fetches a peer asked for, proxy misses): a second asker joins the fill that is running
 * and reads its growing file, so a blob crosses the WAN once.
 */
export class Fills {
  readonly #fills = new Map<string, Fill>();

  /** The fill of `digest` running now, if any. */
  get(digest: string): Fill | undefined {
    return this.#fills.get(digest);
  }

  /** Fills running now. */
  get size(): number {
    return this.#fills.size;
  }

  /**
   * Joins the fill of `opts.digest` running now or starts one with the caller's options (policy,
   * sources, signal): the first asker's policy governs the whole fill. `joined` says which.
   */
  fill(opts: FillOptions): { fill: Fill; joined: boolean } {
    const running = this.#fills.get(opts.digest);
    if (running) return { fill: running, joined: true };
    const fill = new Fill(opts);
    this.#fills.set(opts.digest, fill);
    void fill.done.then(() => {
      if (this.#fills.get(opts.digest) === fill) this.#fills.delete(opts.digest);
    });
    return { fill, joined: false };
  }
}
