import { readFile } from 'node:fs/promises';
import { SatelliteError } from './errors.ts';

/**
 * A shared secret from a file: its first line, trimmed, at least 16 characters. Read once at start;
 * a missing or short one is a configuration error naming `key` (exit 78).
 */
export async function readTokenFile(path: string, key: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new SatelliteError('CONFIG_INVALID', `${key}: cannot read ${path}`, { cause: err });
  }
  const token = text.split('\n')[0]!.trim();
  if (token.length < 16) throw new SatelliteError('CONFIG_INVALID', `${key}: ${path} holds no token of at least 16 characters`);
  return token;
}
