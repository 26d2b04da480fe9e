import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { SatelliteError, isSatelliteError } from '../lib/errors.ts';
import { WorkerPool } from '../lib/worker-pool.ts';
import { AttemptLimiter } from './attempt-limiter.ts';
import type { BcryptReply, BcryptRequest } from './bcrypt-worker.ts';

export interface HtpasswdAuthOptions {
  realm: string;
  /** Worker threads checking bcrypt hashes (off the event loop). */
  verifyThreads: number;
  /** Checks waiting for a thread; beyond, 429 at once. */
  maxPendingVerifications: number;
  /** How long a verified user:password is remembered, and how many are. */
  cacheSeconds: number;
  cacheEntries: number;
  /** Failed password checks per remote address per minute (burst the same); beyond, 429 with Retry-After. */
  failuresPerMinute: number;
}

/** Outcome of a request's credentials: a user, or none (401), or too many failures/busy (429). */
export type AuthResult = { user: string; retryAfterSeconds?: undefined } | { user: undefined; retryAfterSeconds?: number };

// From source the worker is the .ts beside this file; in the esbuild bundle it is its own entry
// point (scripts/release/bundle.ts) written beside satellite.mjs, and import.meta.url is the bundle's.
const WORKER_URL = new URL(process.env.HARBOR_SATELLITE_BUNDLE === '1' ? './bcrypt-worker.mjs' : './bcrypt-worker.ts', import.meta.url);

/**
 * Basic auth against an htpasswd file of bcrypt hashes (htpasswd -B), as distribution does.
 * bcrypt costs tens of milliseconds of CPU by design, so: checks run in a small pool of worker
 * threads; a verified credential is remembered for a short while (by an HMAC of the pair under a
 * per-process key, never the password itself); failed attempts are rate-limited per address; and an
 * unknown user is checked against a dummy hash of the same cost, so timing does not tell which
 * user names exist.
 */
export class HtpasswdAuth {
  readonly realm: string;
  readonly #users: Map<string, string>;
  readonly #dummyHash: string;
  readonly #pool: WorkerPool<BcryptRequest, BcryptReply>;
  readonly #verified = new Map<string, number>();
  readonly #cacheKey = randomBytes(32);
  readonly #cacheMs: number;
  readonly #cacheEntries: number;
  readonly #attempts: AttemptLimiter;

  private constructor(users: Map<string, string>, dummyHash: string, pool: WorkerPool<BcryptRequest, BcryptReply>, opts: HtpasswdAuthOptions) {
    this.#users = users;
    this.#dummyHash = dummyHash;
    this.#pool = pool;
    this.realm = opts.realm;
    this.#cacheMs = opts.cacheSeconds * 1000;
    this.#cacheEntries = opts.cacheEntries;
    this.#attempts = new AttemptLimiter(opts.failuresPerMinute);
  }

  static async load(file: string, opts: HtpasswdAuthOptions): Promise<HtpasswdAuth> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new SatelliteError('CONFIG_INVALID', `registry.auth.htpasswd: cannot read ${file}`, { cause: err });
    }
    const users = new Map<string, string>();
    let cost = 4;
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const idx = line.indexOf(':');
      const user = line.slice(0, idx);
      const hash = line.slice(idx + 1);
      const m = /^\$2[aby]\$(\d\d)\$/.exec(hash);
      if (idx <= 0 || !m) {
        throw new SatelliteError('CONFIG_INVALID', `registry.auth.htpasswd: line ${i + 1} of ${file} is not user:bcrypt-hash (use htpasswd -B)`);
      }
      cost = Math.max(cost, Number(m[1]));
      users.set(user, hash);
    }
    const pool = new WorkerPool<BcryptRequest, BcryptReply>(WORKER_URL, { size: opts.verifyThreads, maxQueue: opts.maxPendingVerifications });
    try {
      const reply = await pool.run({ op: 'hash', password: randomBytes(16).toString('hex'), cost });
      if (!reply.hash) throw new Error(reply.error ?? 'no hash');
      return new HtpasswdAuth(users, reply.hash, pool, opts);
    } catch (err) {
      await pool.close();
      throw new SatelliteError('AUTH_UNAVAILABLE', `registry.auth: cannot start the password check threads: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Checks the request's basic credentials; client is the remote address (failure limits). */
  async authenticate(req: IncomingMessage, client: string): Promise<AuthResult> {
    const header = req.headers.authorization;
    if (!header || !/^basic /i.test(header)) return { user: undefined };
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const idx = decoded.indexOf(':');
    if (idx <= 0) return { user: undefined };
    const user = decoded.slice(0, idx);
    const key = createHmac('sha256', this.#cacheKey).update(decoded).digest('hex');
    const until = this.#verified.get(key);
    if (until !== undefined && until > Date.now()) return { user };
    if (until !== undefined) this.#verified.delete(key);

    const wait = this.#attempts.take(client);
    if (wait > 0) return { user: undefined, retryAfterSeconds: wait };
    const hash = this.#users.get(user);
    let ok: boolean;
    try {
      // Unknown user: the same work against a dummy hash, then no.
      const reply = await this.#pool.run({ op: 'compare', password: decoded.slice(idx + 1), hash: hash ?? this.#dummyHash });
      ok = reply.ok && hash !== undefined;
    } catch (err) {
      this.#attempts.refund(client);
      if (isSatelliteError(err, 'BUSY')) return { user: undefined, retryAfterSeconds: 1 };
      throw err;
    }
    if (!ok) return { user: undefined };
    this.#attempts.refund(client);
    // Bounded: the oldest entry goes first (Map keeps insertion order).
    if (this.#verified.size >= this.#cacheEntries) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(key, Date.now() + this.#cacheMs);
    return { user };
  }

  challenge(): string {
    return `Basic realm="${this.realm}"`;
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}
