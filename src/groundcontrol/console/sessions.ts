import { randomBytes } from 'node:crypto';
import { sameSecretHash, sha256Hex } from '../secrets.ts';

/** The console's session cookie: HttpOnly, SameSite=Strict, Path=/ (see cookieHeader). */
export const SESSION_COOKIE = 'gc_session';
/** Header a cookie-authenticated state-changing request must carry (double-submit token). */
export const CSRF_HEADER = 'x-csrf-token';
/** Sessions held at most (the oldest is dropped past it): a login flood cannot grow memory. */
export const MAX_SESSIONS = 1000;

export interface Session {
  /** Public handle: a prefix of the hash of the session id (logs and the audit log). */
  id: string;
  /** SHA-256 of the admin token it was opened with: checked again on every request. */
  adminTokenHash: string;
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
}

/**
 * Console sessions, in memory: a restart logs everyone out, which is the safe default for a
 * control plane. Keyed by the SHA-256 of the cookie value, so a heap dump does not hold cookies.
 */
export class SessionStore {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #byHash = new Map<string, Session>();

  constructor(opts: { ttlSeconds: number; now?: () => number }) {
    this.#ttlMs = opts.ttlSeconds * 1000;
    this.#now = opts.now ?? Date.now;
  }

  get ttlSeconds(): number {
    return this.#ttlMs / 1000;
  }

  /** Opens a session for an admin token (already checked); returns the cookie value once. */
  create(adminTokenHash: string): { cookie: string; session: Session } {
    this.#sweep();
    while (this.#byHash.size >= MAX_SESSIONS) {
      const oldest = this.#byHash.keys().next().value as string;
      this.#byHash.delete(oldest);
    }
    const cookie = randomBytes(32).toString('base64url');
    const hash = sha256Hex(cookie);
    const now = this.#now();
    const session: Session = {
      id: hash.slice(0, 12),
      adminTokenHash,
      csrfToken: randomBytes(24).toString('base64url'),
      createdAt: now,
      expiresAt: now + this.#ttlMs,
    };
    this.#byHash.set(hash, session);
    return { cookie, session };
  }

  /** The live session of a cookie value, or undefined (unknown or expired). */
  get(cookie: string): Session | undefined {
    const hash = sha256Hex(cookie);
    const s = this.#byHash.get(hash);
    if (!s) return undefined;
    if (s.expiresAt <= this.#now()) {
      this.#byHash.delete(hash);
      return undefined;
    }
    return s;
  }

  delete(cookie: string): boolean {
    return this.#byHash.delete(sha256Hex(cookie));
  }

  get size(): number {
    return this.#byHash.size;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [hash, s] of this.#byHash) if (s.expiresAt <= now) this.#byHash.delete(hash);
  }
}

/** True when the header carries the session's CSRF token (constant time). */
export function csrfMatches(session: Session, header: string | string[] | undefined): boolean {
  return typeof header === 'string' && sameSecretHash(header, session.csrfToken);
}

/** Value of one cookie of a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Set-Cookie for a session (maxAge 0 clears it). Secure is added when the request came over TLS. */
export function cookieHeader(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}
