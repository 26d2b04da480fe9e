import { createHmac, randomBytes } from 'node:crypto';
import { chmod, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { errnoCode, SatelliteError } from '../../lib/errors.ts';
import { writeFileAtomic } from '../../lib/fs-atomic.ts';
import type { SiteMembership } from '../../protocol/index.ts';

/** Ground Control's key for site secrets: 32 random bytes (hex), mode 0600, in its data dir. */
export const SITE_KEY_FILE = 'site-key';

/** Reads <dataDir>/site-key, creating it (0600) on first start. */
export async function loadSiteKey(dataDir: string, log: Logger): Promise<Buffer> {
  const file = join(dataDir, SITE_KEY_FILE);
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw new SatelliteError('CONFIG_INVALID', `${file}: cannot read the site key: ${errnoCode(err) ?? String(err)}`, { cause: err });
  }
  if (text === undefined) {
    const key = randomBytes(32);
    await writeFileAtomic(file, `${key.toString('hex')}\n`, 0o600);
    log.info({ file }, 'site key generated');
    return key;
  }
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new SatelliteError('CONFIG_INVALID', `${file}: not a site key (64 hex digits)`);
  // Whatever the umask was when someone copied it here: only Ground Control's user reads it.
  await chmod(file, 0o600);
  return Buffer.from(hex, 'hex');
}

/**
 * The peer secret of a site: HMAC-SHA256 over the site name and its sorted member list. Nothing
 * is stored; it changes exactly when the membership does (a member joins, leaves or moves), so a
 * satellite that left the site cannot use it past its members' grace window.
 */
export function siteSecret(key: Buffer, site: Pick<SiteMembership, 'name' | 'members'>): string {
  const members = [...site.members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((m) => [m.id, m.url]);
  return createHmac('sha256', key).update(JSON.stringify(['harbor-satellite site secret v1', site.name, members])).digest('base64url');
}

/** The membership as published to one satellite: with the secret only when that satellite is a member. */
export function withSiteSecret(key: Buffer | undefined, site: SiteMembership, satelliteId: string): SiteMembership {
  if (!key || !site.members.some((m) => m.id === satelliteId)) return site;
  return { ...site, secret: siteSecret(key, site) };
}
