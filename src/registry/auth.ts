import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import type { IncomingMessage } from 'node:http';
import { SatelliteError } from '../lib/errors.ts';

/**
 * Basic auth against an htpasswd file of bcrypt hashes (htpasswd -B), as distribution does.
 * bcrypt costs tens of milliseconds by design, so a verified credential is remembered (by a
 * sha256 of the pair, never the password itself) for a short while.
 */
export class HtpasswdAuth {
  readonly realm: string;
  readonly #users: Map<string, string>;
  readonly #verified = new Map<string, number>();
  readonly #cacheMs: number;

  private constructor(users: Map<string, string>, realm: string, cacheMs: number) {
    this.#users = users;
    this.realm = realm;
    this.#cacheMs = cacheMs;
  }

  static async load(file: string, realm: string, cacheMs = 60_000): Promise<HtpasswdAuth> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new SatelliteError('CONFIG_INVALID', `registry.auth.htpasswd: cannot read ${file}`, { cause: err });
    }
    const users = new Map<string, string>();
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const idx = line.indexOf(':');
      const user = line.slice(0, idx);
      const hash = line.slice(idx + 1);
      if (idx <= 0 || !/^\$2[aby]\$\d\d\$/.test(hash)) {
        throw new SatelliteError('CONFIG_INVALID', `registry.auth.htpasswd: line ${i + 1} of ${file} is not user:bcrypt-hash (use htpasswd -B)`);
      }
      users.set(user, hash);
    }
    return new HtpasswdAuth(users, realm, cacheMs);
  }

  /** Returns the user name, or undefined when the request is not authenticated. */
  async authenticate(req: IncomingMessage): Promise<string | undefined> {
    const header = req.headers.authorization;
    if (!header || !/^basic /i.test(header)) return undefined;
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const idx = decoded.indexOf(':');
    if (idx <= 0) return undefined;
    const user = decoded.slice(0, idx);
    const hash = this.#users.get(user);
    if (!hash) return undefined;
    const key = createHash('sha256').update(decoded).digest('hex');
    const until = this.#verified.get(key);
    if (until !== undefined && until > Date.now()) return user;
    // bcryptjs accepts $2y$ (Apache's spelling of $2b$) as $2b$.
    if (!(await bcrypt.compare(decoded.slice(idx + 1), hash.replace(/^\$2y\$/, '$2b$')))) return undefined;
    if (this.#verified.size > 10_000) this.#verified.clear();
    this.#verified.set(key, Date.now() + this.#cacheMs);
    return user;
  }

  challenge(): string {
    return `Basic realm="${this.realm}"`;
  }
}
