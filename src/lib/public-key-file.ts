import { readFile } from 'node:fs/promises';
import { SatelliteError } from './errors.ts';

const PEM_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g;

/**
 * The PEM public keys of a configured key file (one file may hold several), each ending in a
 * newline. An unreadable file or one without a key is a configuration error naming `where` (the
 * config key) and the file. The keys are not parsed here: each caller loads them its own way.
 */
export async function readPublicKeyFile(file: string, where: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new SatelliteError('CONFIG_INVALID', `${where}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const found = text.match(PEM_BLOCK) ?? [];
  if (found.length === 0) throw new SatelliteError('CONFIG_INVALID', `${where}: ${file} holds no PEM public key`);
  return found.map((k) => `${k}\n`);
}
