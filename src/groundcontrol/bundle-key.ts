import { join } from 'node:path';
import { loadOrCreateSigningKey, type SigningKey } from '../lib/ed25519.ts';

/**
 * Ground Control's bundle signing key: Ed25519, PKCS#8 PEM, `<dataDir>/bundle-signing.key`, mode
 * 0600, created on first start. It signs the contents list of every bundle `groundcontrol bundle
 * create` writes; satellites get the public key at registration (docs/bundles.md, "Trust chain").
 */
export const BUNDLE_KEY_FILE = 'bundle-signing.key';

export function loadBundleKey(dataDir: string, opts: { create?: boolean } = {}): Promise<SigningKey & { created: boolean }> {
  return loadOrCreateSigningKey(join(dataDir, BUNDLE_KEY_FILE), opts);
}
