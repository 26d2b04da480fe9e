/** A counting semaphore with a bounded wait queue. */
export class Limiter {
  readonly #max: number;
  readonly #maxQueue: number;
  #active = 0;
  readonly #queue: Array<() => void> = [];

  constructor(max: number, maxQueue = Infinity) {
    this.#max = max;
    this.#maxQueue = maxQueue;
  }

  get active(): number {
    return this.#active;
  }

  /** Takes a slot now if one is free. */
  tryAcquire(): boolean {
    if (this.#active >= this.#max) return false;
    this.#active++;
    return true;
  }

  /** Resolves when a slot is taken; rejects at once if the queue is full. */
  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (this.#queue.length >= this.#maxQueue) return Promise.reject(new Error('limiter queue full'));
    return new Promise((resolve) => this.#queue.push(resolve));
  }

  release(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#active--;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
