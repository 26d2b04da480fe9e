import { SatelliteError } from '../lib/errors.ts';

export const PeerErrorCode = {
  /** Refused, reset, or no answer within the connect / first-byte / idle timeouts. */
  unreachable: 'PEER_UNREACHABLE',
  /** The peer answered something this contract does not allow (status, headers, body). */
  protocol: 'PEER_PROTOCOL',
  /** The peer refused our token (or we refused theirs). */
  unauthorized: 'PEER_UNAUTHORIZED',
  /** The peer does not have the blob (any more). */
  notFound: 'PEER_NOT_FOUND',
  /** peers config that cannot work (e.g. unreadable tokenFile). */
  config: 'CONFIG_INVALID',
} as const;

export function peerError(code: string, message: string, detail?: unknown, cause?: unknown): SatelliteError {
  return new SatelliteError(code, message, { detail, cause });
}
