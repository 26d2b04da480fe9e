import { SatelliteError, errorCode } from '../lib/errors.ts';

export { errorCode };
import { UpstreamErrorCode, upstreamError, type UpstreamErrorDetail } from './errors.ts';

// Errors after which a small idempotent request is worth repeating: the connection broke under
// us (often a kept-alive socket the server had just closed). Refused/DNS/timeouts are not
// retried: the upstream is down or too slow, and the sync schedule will come back.
const RETRYABLE = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ECONNABORTED']);


export function isRetryableNetworkCode(code: string | undefined): boolean {
  return code !== undefined && RETRYABLE.has(code);
}

function describe(code: string | undefined, err: unknown): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name does not resolve';
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connect timed out';
    case 'UND_ERR_HEADERS_TIMEOUT':
      return 'no response headers in time';
    case 'UND_ERR_BODY_TIMEOUT':
      return 'body stalled (idle timeout)';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection reset or closed by the other side';
    default:
      if (code?.startsWith('ERR_TLS') || code?.includes('CERT') || code?.startsWith('DEPTH_ZERO')) return `TLS failure (${code})`;
      return err instanceof Error ? err.message : String(err);
  }
}

/**
 * Maps a transport failure to UPSTREAM_UNREACHABLE (with detail.errno). SatelliteErrors pass
 * through unchanged; so does an abort, which is the caller's decision, not the upstream's fault.
 */
export function networkError(err: unknown, what: string, detail: UpstreamErrorDetail): Error {
  if (err instanceof SatelliteError) return err;
  const code = errorCode(err);
  if (code === 'ABORT_ERR' || code === 'UND_ERR_ABORTED' || (err instanceof Error && err.name === 'AbortError')) return err as Error;
  return upstreamError(UpstreamErrorCode.unreachable, `${what}: ${describe(code, err)}`, { ...detail, ...(code ? { errno: code } : {}) }, err);
}
