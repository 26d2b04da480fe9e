import { createHash, timingSafeEqual } from 'node:crypto';
import { readTokenFile } from '../lib/token-file.ts';
import type { PeersConfig } from './config-schema.ts';

/** The shared peer token: inline, or the first line of tokenFile (read once at start). */
export async function loadPeerToken(config: PeersConfig): Promise<string | undefined> {
  if (config.token !== undefined) return config.token;
  if (config.tokenFile === undefined) return undefined;
  return readTokenFile(config.tokenFile, 'peers.tokenFile');
}

const bearerHash = (secret: string) => createHash('sha256').update(`Bearer ${secret}`).digest();

/**
 * The secrets of the peer endpoints, which never run without one. A static site shares the
 * configured token; under Ground Control the members get a per-site secret with their desired
 * state, rotated whenever the membership changes. Members receive the new state at different
 * moments, so the previous site secret stays accepted for graceMs after a rotation.
 */
export class PeerCredentials {
  readonly #configured: string | undefined;
  readonly #graceMs: number;
  readonly #now: () => number;
  #current: string | undefined;
  #previous: { secret: string; until: number } | undefined;

  constructor(opts: { configured: string | undefined; graceMs: number; now?: () => number }) {
    this.#configured = opts.configured;
    this.#graceMs = opts.graceMs;
    this.#now = opts.now ?? Date.now;
  }

  /** The site secret from Ground Control's membership; returns true when it changed (a rotation). */
  setSiteSecret(secret: string | undefined): boolean {
    if (secret === this.#current) return false;
    if (this.#current !== undefined) this.#previous = { secret: this.#current, until: this.#now() + this.#graceMs };
    this.#current = secret;
    return true;
  }

  /**
   * What to send to a member, best first: the site secret to the members Ground Control named,
   * else the configured token; then, inside the grace window, the previous site secret (for a
   * member that has not got the new one yet).
   */
  outgoing(fromSite: boolean): string[] {
    const first = fromSite ? (this.#current ?? this.#configured) : (this.#configured ?? this.#current);
    const previous = this.#previousInGrace();
    return [first, previous].filter((s, i, all): s is string => s !== undefined && all.indexOf(s) === i);
  }

  #previousInGrace(): string | undefined {
    return this.#previous !== undefined && this.#previous.until > this.#now() ? this.#previous.secret : undefined;
  }

  /** True when the Authorization header carries an accepted secret. Constant time: every candidate is compared. */
  accepts(authorization: string | undefined): boolean {
    if (authorization === undefined || authorization.length > 1024) return false;
    const got = createHash('sha256').update(authorization).digest();
    const previous = this.#previousInGrace();
    let ok = false;
    for (const secret of [this.#configured, this.#current, previous]) {
      if (secret === undefined) continue;
      // Fixed-length hashes: timingSafeEqual needs equal lengths and leaks nothing about the secret's.
      ok = timingSafeEqual(got, bearerHash(secret)) || ok;
    }
    return ok;
  }
}
