import type { ProxySignaturePolicy } from '../proxy/index.ts';
import { SatelliteError } from '../lib/errors.ts';
import { readPublicKeyFile } from '../lib/public-key-file.ts';
import { loadKeys } from '../trust/index.ts';

/**
 * The PEM public keys of proxy.signaturePolicy.keyFiles (each file may hold several, a cosign.pub
 * holds one), read at start. An unreadable file, one without a key, or a key that does not parse
 * is a configuration error naming the file (exit 78).
 */
export async function proxySignatureKeys(policy: ProxySignaturePolicy): Promise<string[]> {
  if (policy.mode === 'off') return [];
  const keys: string[] = [];
  for (const [i, file] of policy.keyFiles.entries()) {
    const where = `proxy.signaturePolicy.keyFiles[${i}]`;
    const found = await readPublicKeyFile(file, where);
    try {
      loadKeys(found, `${where} (${file})`);
    } catch (err) {
      throw new SatelliteError('CONFIG_INVALID', (err as Error).message, { cause: err });
    }
    keys.push(...found);
  }
  return keys;
}
