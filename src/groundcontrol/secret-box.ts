import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SatelliteError } from '../lib/errors.ts';
import { writeFileAtomic } from '../lib/fs-atomic.ts';
import { PRIVATE_FILE_MODE } from '../lib/private-files.ts';

/** The key file in Ground Control's data dir (32 random bytes, base64, mode 0600). */
export const SECRET_KEY_FILE = 'secret.key';

// Sealed bytes: magic, 12-byte IV, 16-byte GCM tag, ciphertext. Plain MQTT payloads here are JSON.
const MAGIC = Buffer.from('HSB1');
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Encrypts what Ground Control must keep on disk but must not keep in plain text: the broker's
 * persisted messages (a satellite's desired state carries the upstream password). AES-256-GCM
 * with a key file beside the database, so a copy of the database alone (a backup, a file left
 * world-readable by an older version) reveals no credentials. Whoever can read the data dir can
 * read the key too: the dir is 0700 (docs/security.md).
 */
export class SecretBox {
  readonly #key: Buffer;

  private constructor(key: Buffer) {
    this.#key = key;
  }

  /** Reads `<dataDir>/secret.key`, creating it (0600) on first start. */
  static async open(dataDir: string): Promise<SecretBox> {
    const file = join(dataDir, SECRET_KEY_FILE);
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) {
      const key = randomBytes(32);
      await writeFileAtomic(file, `${key.toString('base64')}\n`, PRIVATE_FILE_MODE);
      return new SecretBox(key);
    }
    const key = Buffer.from(text.trim(), 'base64');
    if (key.length !== 32) throw new SatelliteError('SECRET_KEY_INVALID', `${file} does not hold a 32-byte base64 key`);
    return new SecretBox(key);
  }

  /** A throwaway key (tests, or a process that persists nothing). */
  static ephemeral(): SecretBox {
    return new SecretBox(randomBytes(32));
  }

  seal(plain: Uint8Array): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([MAGIC, iv, cipher.getAuthTag(), body]);
  }

  /** Opens sealed bytes; bytes without the magic (written before sealing existed) pass through. */
  open(data: Uint8Array): Buffer {
    const buf = Buffer.from(data);
    if (!isSealed(buf)) return buf;
    const iv = buf.subarray(MAGIC.length, MAGIC.length + IV_BYTES);
    const tag = buf.subarray(MAGIC.length + IV_BYTES, MAGIC.length + IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, iv);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(buf.subarray(MAGIC.length + IV_BYTES + TAG_BYTES)), decipher.final()]);
  }

  /** A keyed fingerprint: tells whether a secret changed without storing anything guessable. */
  fingerprint(secret: string): string {
    return createHmac('sha256', this.#key).update(secret, 'utf8').digest('base64url');
  }
}

export function isSealed(data: Uint8Array): boolean {
  return data.length >= MAGIC.length + IV_BYTES + TAG_BYTES && Buffer.from(data.subarray(0, MAGIC.length)).equals(MAGIC);
}
