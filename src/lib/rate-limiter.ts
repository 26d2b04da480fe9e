import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A token bucket in bytes per second, shared by every stream that takes from it, so the limit holds
 * for the sum of concurrent downloads. Burst is a quarter second of rate (at least 64 KiB).
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #last = performance.now();
  #tail: Promise<void> = Promise.resolve();

  constructor(bytesPerSecond: number) {
    this.#rate = bytesPerSecond;
    this.#burst = Math.max(65536, bytesPerSecond / 4);
    this.#tokens = this.#burst;
  }

  /** Resolves when n bytes may pass. Callers are served in order. */
  take(n: number, signal?: AbortSignal): Promise<void> {
    const turn = this.#tail.then(() => this.#wait(n, signal));
    this.#tail = turn.catch(() => undefined);
    return turn;
  }

  async #wait(n: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
      this.#last = now;
      // A chunk larger than the burst passes once the bucket is full, leaving a debt.
      if (this.#tokens >= Math.min(n, this.#burst)) {
        this.#tokens -= n;
        return;
      }
      const need = Math.min(n, this.#burst) - this.#tokens;
      await sleep(Math.max(1, (need / this.#rate) * 1000), undefined, signal ? { signal } : undefined);
    }
  }
}
