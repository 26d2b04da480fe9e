import { createHmac, randomBytes } from 'node:crypto';

/**
 * Which device credentials the upstream accepted for which repository, and when: in memory only,
 * keyed by an HMAC of the Authorization value under a key drawn at start (so neither the
 * credentials nor a reusable hash of them are kept or can outlive the process). Bounded: the
 * oldest confirmations go first.
 */
export class DeviceAccess {
  readonly #key = randomBytes(32);
  readonly #confirmed = new Map<string, number>();
  readonly #max: number;

  constructor(maxEntries = 10_000) {
    this.#max = maxEntries;
  }

  fingerprint(authorization: string): string {
    return createHmac('sha256', this.#key).update(authorization).digest('base64url');
  }

  /** The upstream just accepted these credentials for repo. */
  confirm(fingerprint: string, repo: string, now = Date.now()): void {
    const key = `${fingerprint}\0${repo}`;
    this.#confirmed.delete(key);
    if (this.#confirmed.size >= this.#max) {
      const oldest = this.#confirmed.keys().next().value;
      if (oldest !== undefined) this.#confirmed.delete(oldest);
    }
    this.#confirmed.set(key, now);
  }

  /** Milliseconds since the last confirmation for repo, undefined if none. */
  age(fingerprint: string, repo: string, now = Date.now()): number | undefined {
    const at = this.#confirmed.get(`${fingerprint}\0${repo}`);
    return at === undefined ? undefined : now - at;
  }

  /** The upstream refused them: forget any earlier confirmation. */
  revoke(fingerprint: string, repo: string): void {
    this.#confirmed.delete(`${fingerprint}\0${repo}`);
  }
}
