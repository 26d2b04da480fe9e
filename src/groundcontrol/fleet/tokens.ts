import { randomSecret, sha256Hex } from '../secrets.ts';
import type { GcDb } from '../db/db.ts';
import { putToken, removeToken, tokensOf } from '../db/indexes.ts';
import type { TokenRecord } from '../db/records.ts';

export const REGISTRATION_TOKEN_PREFIX = 'hsr_';

export interface NewToken {
  /** The secret: shown once, only its hash is stored. */
  token: string;
  record: TokenRecord;
}

/** Inside a write transaction: stores a new one-time registration token. */
export function putRegistrationToken(
  db: GcDb,
  opts: { satelliteId: string | null; site: string | null; ttlSeconds: number; now: Date },
): NewToken {
  const token = randomSecret(REGISTRATION_TOKEN_PREFIX);
  const hash = sha256Hex(token);
  const record: TokenRecord = {
    id: hash.slice(0, 12),
    satelliteId: opts.satelliteId,
    site: opts.site,
    createdAt: opts.now.toISOString(),
    expiresAt: new Date(opts.now.getTime() + opts.ttlSeconds * 1000).toISOString(),
    usedAt: null,
    usedBy: null,
  };
  putToken(db, hash, record);
  return { token, record };
}

/** Tokens as listed: no secrets, newest first. */
export function listTokens(db: GcDb): TokenRecord[] {
  return [...db.tokens.getRange({})].map(({ value }) => value).sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
}

/** Inside a write transaction: removes every token of a satellite. */
export function removeTokensOf(db: GcDb, satelliteId: string): void {
  for (const [hash] of tokensOf(db, satelliteId)) removeToken(db, hash);
}

/** Inside a write transaction: revokes the token with this public id (a prefix of its hash). */
export function revokeToken(db: GcDb, id: string): boolean {
  // Keys are the hex hash, so the id's tokens are one short key range.
  for (const key of db.tokens.getKeys({ start: id, end: `${id}g` })) {
    removeToken(db, key);
    return true;
  }
  return false;
}
