/**
 * Reusable buffers in power-of-two size classes under one byte budget. Serving from a pool keeps
 * memory flat under load: a fresh buffer per chunk is garbage the collector reclaims late, and
 * at hundreds of MB/s that garbage, not live data, is what fills the RSS.
 */
export class BufferPool {
  readonly #budget: number;
  readonly #min: number;
  readonly #max: number;
  readonly #free = new Map<number, Buffer[]>();
  #freeBytes = 0;
  #leased = 0;
  #users = 0;

  constructor(opts: { budgetBytes: number; minChunkBytes: number; maxChunkBytes: number }) {
    this.#budget = opts.budgetBytes;
    this.#min = opts.minChunkBytes;
    this.#max = opts.maxChunkBytes;
  }

  /** Registers a stream; chunk sizes shrink as streams share the budget (2 buffers each). */
  join(): number {
    this.#users++;
    return this.chunkSize();
  }

  leave(): void {
    this.#users = Math.max(0, this.#users - 1);
  }

  chunkSize(): number {
    const fair = this.#budget / (2 * Math.max(1, this.#users));
    let size = this.#min;
    while (size * 2 <= Math.min(fair, this.#max)) size *= 2;
    return size;
  }

  acquire(size: number): Buffer {
    const list = this.#free.get(size);
    const buf = list?.pop();
    this.#leased += size;
    if (buf) {
      this.#freeBytes -= size;
      return buf;
    }
    return Buffer.allocUnsafeSlow(size);
  }

  release(buf: Buffer): void {
    this.#leased -= buf.length;
    // Idle buffers are kept up to the budget, and only in sizes streams use now.
    if (buf.length > this.chunkSize() || this.#freeBytes + buf.length > this.#budget) return;
    const list = this.#free.get(buf.length) ?? [];
    list.push(buf);
    this.#free.set(buf.length, list);
    this.#freeBytes += buf.length;
  }

  /** Drops the idle buffers (memory pressure): the collector can give their memory back. Returns the bytes dropped. */
  trim(): number {
    const dropped = this.#freeBytes;
    this.#free.clear();
    this.#freeBytes = 0;
    return dropped;
  }

  stats(): { users: number; leasedBytes: number; freeBytes: number } {
    return { users: this.#users, leasedBytes: this.#leased, freeBytes: this.#freeBytes };
  }
}
