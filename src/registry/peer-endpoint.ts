import type { IncomingMessage } from 'node:http';
import { parseDigest } from '../lib/digest.ts';
import type { RequestContext } from './context.ts';
import { registryError } from './errors.ts';
import { sendJson } from './http.ts';
import { sendBlob } from './handlers/blob-get.ts';

/**
 * Satellite-to-satellite endpoints under /_satellite/peer/ (src/peers owns the contract): they
 * are authorised by the site's peer secret instead of the registry's htpasswd, and only reach
 * blobs this satellite's manifests or desired state reference.
 */
export interface PeerEndpoint {
  /** True when the request may use the peer endpoints. */
  authorize(req: IncomingMessage): boolean;
  /** True when the blob may be served to a peer (a stored manifest or the desired state references it). */
  mayRead(digest: string): boolean;
  /** The JSON answer of GET /_satellite/peer/state/<digest> (may long-poll, bounded). */
  state(digest: string, url: URL, signal: AbortSignal): Promise<unknown>;
  /** Blob bytes sent to the asker named by the request (for its counters). */
  served(req: IncomingMessage, bytes: number): void;
}

export const PEER_PREFIX = '/_satellite/peer/';

/** GET /_satellite/peer/state/<digest> and GET|HEAD /_satellite/peer/blobs/<digest> (referenced blobs only). */
export async function handlePeer(peer: PeerEndpoint, ctx: RequestContext): Promise<void> {
  const { req, res, url } = ctx;
  req.resume();
  if (!peer.authorize(req)) throw registryError('UNAUTHORIZED', 'peer token required');
  const m = /^\/_satellite\/peer\/(state|blobs)\/([^/]+)$/.exec(url.pathname);
  if (!m) throw registryError('ROUTE_UNKNOWN', `no such peer endpoint: ${url.pathname.slice(0, 200)}`);
  if (req.method !== 'GET' && !(m[1] === 'blobs' && req.method === 'HEAD')) throw registryError('METHOD_UNKNOWN', `${req.method} is not supported here`);
  const digest = parseDigest(m[2]!).digest;
  if (m[1] === 'state') {
    sendJson(res, 200, await peer.state(digest, url, ctx.signal));
    return;
  }
  const size = peer.mayRead(digest) ? ctx.store.blobSize(digest) : undefined;
  if (size === undefined) throw registryError('BLOB_UNKNOWN', `blob ${digest} not here`);
  await sendBlob(ctx, digest, size);
  if (ctx.stats.bytes) peer.served(req, ctx.stats.bytes);
}
