import { readFile } from 'node:fs/promises';
import type { ProxySignaturePolicy } from '../proxy/index.ts';
import { SatelliteError } from '../lib/errors.ts';
import { loadKeys } from '../trust/index.ts';

const PEM_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g;

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
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new SatelliteError('CONFIG_INVALID', `${where}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    const found = (text.match(PEM_BLOCK) ?? []).map((k) => `${k}\n`);
    if (found.length === 0) throw new SatelliteError('CONFIG_INVALID', `${where}: ${file} holds no PEM public key`);
    try {
      loadKeys(found, `${where} (${file})`);
    } catch (err) {
      throw new SatelliteError('CONFIG_INVALID', (err as Error).message, { cause: err });
    }
    keys.push(...found);
  }
  return keys;
}
