import { createHash, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Secrets Ground Control hands out (admin tokens, registration tokens, MQTT passwords) are 32
 * random bytes, so a fast hash is enough to store them: nothing can be guessed from it.
 */
export function randomSecret(prefix = ''): string {
  return prefix + randomBytes(32).toString('base64url');
}

/** Lookup key of a high-entropy secret (admin and registration tokens). */
export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function sameSecretHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// Mosquitto 2.0's password file format: $7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>.
// The embedded broker checks the same hash, so one stored value serves both brokers.
const MOSQ_ITERATIONS = 101;

export function mosquittoHash(password: string, salt: Buffer = randomBytes(12)): string {
  const hash = pbkdf2Sync(password, salt, MOSQ_ITERATIONS, 64, 'sha512');
  return `$7$${MOSQ_ITERATIONS}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export function verifyMosquittoHash(password: string, stored: string): boolean {
  const m = /^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return false;
  const iterations = Number(m[1]);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 1_000_000) return false;
  const expected = Buffer.from(m[3] as string, 'base64');
  const actual = pbkdf2Sync(password, Buffer.from(m[2] as string, 'base64'), iterations, expected.length, 'sha512');
  return expected.length > 0 && timingSafeEqual(actual, expected);
}
