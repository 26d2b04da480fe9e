import { readTokenFile } from '../lib/token-file.ts';
import type { PeersConfig } from './config-schema.ts';

/** The shared peer token: inline, or the first line of tokenFile (read once at start). */
export async function loadPeerToken(config: PeersConfig): Promise<string | undefined> {
  if (config.token !== undefined) return config.token;
  if (config.tokenFile === undefined) return undefined;
  return readTokenFile(config.tokenFile, 'peers.tokenFile');
}
