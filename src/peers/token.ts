import { readFile } from 'node:fs/promises';
import type { PeersConfig } from './config-schema.ts';
import { PeerErrorCode, peerError } from './errors.ts';

/** The shared peer token: inline, or the first line of tokenFile (read once at start). */
export async function loadPeerToken(config: PeersConfig): Promise<string | undefined> {
  if (config.token !== undefined) return config.token;
  if (config.tokenFile === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(config.tokenFile, 'utf8');
  } catch (err) {
    throw peerError(PeerErrorCode.config, `peers.tokenFile: cannot read ${config.tokenFile}`, undefined, err);
  }
  const token = text.split('\n')[0]!.trim();
  if (token.length < 16) throw peerError(PeerErrorCode.config, `peers.tokenFile: ${config.tokenFile} holds no token of at least 16 characters`);
  return token;
}
