/**
 * Password attempts per remote address: a token bucket of `perMinute` tokens (burst the same),
 * refilled continuously. An attempt takes a token before the (expensive) check; a success gives it
 * back, so only failures count. The table is bounded: full buckets carry no information and are
 * dropped when it grows past maxClients.
 */
export class AttemptLimiter {
  readonly #perMinute: number;
  readonly #maxClients: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perMinute: number, maxClients = 10_000) {
    this.#perMinute = perMinute;
    this.#maxClients = maxClients;
  }

  /** Takes a token: 0 when allowed, else the seconds until one is available (Retry-After). */
  take(client: string, now = Date.now()): number {
    const b = this.#refill(client, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - b.tokens) * 60) / this.#perMinute));
  }

  /** Gives back the token of an attempt that succeeded. */
  refund(client: string, now = Date.now()): void {
    const b = this.#refill(client, now);
    b.tokens = Math.min(this.#perMinute, b.tokens + 1);
  }

  #refill(client: string, now: number): { tokens: number; at: number } {
    let b = this.#buckets.get(client);
    if (!b) {
      if (this.#buckets.size >= this.#maxClients) this.#prune(now);
      b = { tokens: this.#perMinute, at: now };
      this.#buckets.set(client, b);
      return b;
    }
    b.tokens = Math.min(this.#perMinute, b.tokens + ((now - b.at) / 60_000) * this.#perMinute);
    b.at = now;
    return b;
  }

  #prune(now: number): void {
    for (const [client, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 60_000) * this.#perMinute >= this.#perMinute) this.#buckets.delete(client);
    }
    // Still full (a flood from many addresses): forget the oldest half rather than grow.
    if (this.#buckets.size >= this.#maxClients) {
      let drop = this.#buckets.size / 2;
      for (const client of this.#buckets.keys()) {
        if (drop-- <= 0) break;
        this.#buckets.delete(client);
      }
    }
  }
}
