import { join } from 'node:path';
import type { SignatureRequirement } from '../bundle/signature.ts';
import type { SatelliteConfig } from '../config/index.ts';
import { loadIdentity } from '../control/identity.ts';
import { readPublicKeyFile } from '../lib/public-key-file.ts';
import type { DesiredState } from '../protocol/desired-state.ts';

/**
 * The Ground Control keys a bundle may be signed by: those of the desired state in force (Ground
 * Control's latest word, which replaces the key registration stored in identity.json: a rotation
 * retires the old key), else the registration's, plus those in sync.bundleKeyFile (for a satellite
 * that imports before it ever registered, e.g. a flashed image's first boot). Plus whether an
 * unsigned bundle is refused (sync.requireSignedBundles). A bundle never adds a key: its copy of the
 * desired state is stripped of bundleKeys before it is adopted (sync/adopt.ts).
 */
export async function bundleSignatureRequirement(config: SatelliteConfig, desired?: Pick<DesiredState, 'bundleKeys'> | undefined): Promise<SignatureRequirement> {
  const keys: string[] = [];
  if (desired?.bundleKeys?.length) keys.push(...desired.bundleKeys);
  else {
    const identity = await loadIdentity(config.control?.identityFile ?? join(config.dataDir, 'identity.json'));
    if (identity?.bundleKey) keys.push(identity.bundleKey);
  }
  const file = config.sync.bundleKeyFile;
  if (file) keys.push(...(await readPublicKeyFile(file, 'sync.bundleKeyFile')));
  return { keys, required: config.sync.requireSignedBundles };
}
