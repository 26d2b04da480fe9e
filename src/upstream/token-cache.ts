/** docker token spec: a token response without expires_in is valid for 60 seconds. */
export const DEFAULT_TOKEN_LIFETIME_S = 60;
// Renew this long before expiry, so a token never expires between our check and the upstream's.
const SAFETY_MARGIN_MS = 10_000;

interface Entry {
  token: string;
  expiresAt: number;
}

/**
 * Bearer tokens keyed by realm, service and scope. Lifetimes are measured on our own clock from
 * when the token arrived (issued_at is ignored: edge boards often boot with a wrong clock).
 * Concurrent requests for one missing key share one fetch.
 */
export class TokenCache {
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<string>>();
  readonly #now: () => number;
  readonly #maxEntries: number;

  constructor(opts: { now?: () => number; maxEntries?: number } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#maxEntries = opts.maxEntries ?? 1000;
  }

  static key(realm: string, service: string | undefined, scope: string | undefined): string {
    return JSON.stringify([realm, service ?? '', scope ?? '']);
  }

  get(key: string): string | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.token;
  }

  /**
   * Stores a token that lives `expiresInS` seconds from now (default 60), minus a safety margin:
   * 10 s, or half the lifetime for short-lived tokens.
   */
  set(key: string, token: string, expiresInS: number | undefined): void {
    const lifetimeMs = (expiresInS !== undefined && expiresInS > 0 ? expiresInS : DEFAULT_TOKEN_LIFETIME_S) * 1000;
    const usableMs = Math.max(lifetimeMs / 2, lifetimeMs - SAFETY_MARGIN_MS);
    // Bounded: one entry per repository scope; drop the oldest when a huge sync touches many repos.
    if (this.#entries.size >= this.#maxEntries && !this.#entries.has(key)) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.delete(key);
    this.#entries.set(key, { token, expiresAt: this.#now() + usableMs });
  }

  /** Forgets a token the upstream refused, unless it was already replaced by another. */
  drop(key: string, token?: string): void {
    if (token === undefined || this.#entries.get(key)?.token === token) this.#entries.delete(key);
  }

  /** The cached token, or the result of `fetch` (shared by concurrent callers of the same key). */
  async getOrFetch(key: string, fetch: () => Promise<{ token: string; expiresInS: number | undefined }>): Promise<{ token: string; fresh: boolean }> {
    const cached = this.get(key);
    if (cached !== undefined) return { token: cached, fresh: false };
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = fetch()
        .then(({ token, expiresInS }) => {
          this.set(key, token, expiresInS);
          return token;
        })
        .finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return { token: await pending, fresh: true };
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}
