import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SignatureRequirement } from '../bundle/signature.ts';
import type { SatelliteConfig } from '../config/index.ts';
import { loadIdentity } from '../control/identity.ts';
import { SatelliteError } from '../lib/errors.ts';

const PEM_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g;

/**
 * The Ground Control keys a bundle may be signed by: the one registration stored in identity.json,
 * and those in sync.bundleKeyFile (for a satellite that imports before it ever registered, e.g. a
 * flashed image's first boot). Plus whether an unsigned bundle is refused (sync.requireSignedBundles).
 */
export async function bundleSignatureRequirement(config: SatelliteConfig): Promise<SignatureRequirement> {
  const keys: string[] = [];
  const identity = await loadIdentity(config.control?.identityFile ?? join(config.dataDir, 'identity.json'));
  if (identity?.bundleKey) keys.push(identity.bundleKey);
  const file = config.sync.bundleKeyFile;
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new SatelliteError('CONFIG_INVALID', `sync.bundleKeyFile: cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    const found = text.match(PEM_BLOCK) ?? [];
    if (found.length === 0) throw new SatelliteError('CONFIG_INVALID', `sync.bundleKeyFile: ${file} holds no PEM public key`);
    keys.push(...found.map((k) => `${k}\n`));
  }
  return { keys, required: config.sync.requireSignedBundles };
}
