import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SatelliteError, errnoCode } from '../lib/errors.ts';
import { writeFileAtomic } from '../lib/fs-atomic.ts';
import type { GroundControlConfig } from './config.ts';
import { durable, type GcDb } from './db/db.ts';
import { randomSecret, sha256Hex } from './secrets.ts';

export const ADMIN_TOKEN_PREFIX = 'hsa_';
/** Where a generated first admin token is written (mode 0600) when none was given. */
export const GENERATED_ADMIN_TOKEN_FILE = 'admin-token';

/** True when the bearer token is one of the admin tokens (only SHA-256 hashes are stored). */
export function isAdminToken(db: GcDb, token: string): boolean {
  return token.length >= 16 && db.adminTokens.get(sha256Hex(token)) !== undefined;
}

export async function addAdminToken(db: GcDb, token: string, source: string): Promise<boolean> {
  if (token.length < 16) throw new SatelliteError('CONFIG_INVALID', `admin token from ${source} is shorter than 16 characters`);
  const hash = sha256Hex(token);
  return durable(db, () => {
    if (db.adminTokens.get(hash)) return false;
    db.adminTokens.put(hash, { createdAt: new Date().toISOString(), source });
    return true;
  });
}

/** A new random admin token; printed once by `groundcontrol admin-token create`. */
export async function createAdminToken(db: GcDb, source = 'cli'): Promise<string> {
  const token = randomSecret(ADMIN_TOKEN_PREFIX);
  await addAdminToken(db, token, source);
  return token;
}

/**
 * The first admin token, in order: GROUNDCONTROL_ADMIN_TOKEN, config adminTokenFile, or (when
 * no admin token exists at all) a generated one written to <dataDir>/admin-token.
 */
export async function bootstrapAdminTokens(db: GcDb, config: GroundControlConfig, log: Logger): Promise<void> {
  if (config.bootstrapAdminToken) {
    if (await addAdminToken(db, config.bootstrapAdminToken, 'env')) log.info('admin token from GROUNDCONTROL_ADMIN_TOKEN added');
  }
  if (config.adminTokenFile) {
    let text: string;
    try {
      text = await readFile(config.adminTokenFile, 'utf8');
    } catch (err) {
      throw new SatelliteError('CONFIG_INVALID', `adminTokenFile: cannot read ${config.adminTokenFile}: ${errnoCode(err) ?? String(err)}`, { cause: err });
    }
    const token = text.split('\n')[0]?.trim() ?? '';
    if (await addAdminToken(db, token, 'file')) log.info({ file: config.adminTokenFile }, 'admin token from adminTokenFile added');
  }
  if (db.adminTokens.getKeysCount() === 0) {
    const file = join(config.dataDir, GENERATED_ADMIN_TOKEN_FILE);
    const token = await createAdminToken(db, 'generated');
    await writeFileAtomic(file, `${token}\n`, 0o600);
    log.warn({ file }, 'no admin token configured: generated one');
  }
}
