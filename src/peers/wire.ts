import { validate } from '../lib/validate.ts';
import { PeerErrorCode, peerError } from './errors.ts';

/**
 * The peer-to-peer contract (satellites of one site, over the registry's port):
 *
 *   GET /_satellite/peer/state/<digest>?repo=R&size=N&fetch=1&wait=MS
 *       -> 200 PeerBlobState (JSON). With wait, a 'fetching' answer is held until the blob is
 *          present, the fetch failed, or MS passed (bounded by the server). fetch=1 asks the
 *          server to fetch the blob from its upstream when it has not got it (fetch on request).
 *   GET /_satellite/peer/blobs/<digest>   (Range: bytes=N- supported)
 *       -> 200/206 the bytes, 404 when not present.
 *
 * Both need `Authorization: Bearer <peers.token>` when a token is configured; askers name
 * themselves in `X-Satellite-Peer` (for the server's counters only, never trusted).
 */
export const PEER_PATH = '/_satellite/peer/';
export const PEER_ID_HEADER = 'x-satellite-peer';

export type PeerBlobState =
  | { state: 'present'; size: number }
  | { state: 'fetching'; offset: number; size: number }
  | { state: 'absent'; reason?: string };

export const peerBlobStateSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['state'],
  properties: {
    state: { enum: ['present', 'fetching', 'absent'] },
    size: { type: 'integer', minimum: 0 },
    offset: { type: 'integer', minimum: 0 },
    reason: { type: 'string', maxLength: 500 },
  },
} as const;

/** Largest state body an asker reads. */
export const MAX_STATE_BYTES = 4096;

export function parsePeerBlobState(input: unknown): PeerBlobState {
  const doc = validate<{ state: PeerBlobState['state']; size?: number; offset?: number; reason?: string }>(
    peerBlobStateSchema,
    input,
    'peer blob state',
    PeerErrorCode.protocol,
  );
  if (doc.state === 'present' && doc.size !== undefined) return { state: 'present', size: doc.size };
  if (doc.state === 'fetching' && doc.size !== undefined && doc.offset !== undefined) return { state: 'fetching', offset: doc.offset, size: doc.size };
  if (doc.state === 'absent') return doc.reason === undefined ? { state: 'absent' } : { state: 'absent', reason: doc.reason };
  throw peerError(PeerErrorCode.protocol, `peer blob state ${doc.state} lacks size or offset`);
}
