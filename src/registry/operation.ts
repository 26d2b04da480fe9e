import { matchRoute } from './routes.ts';
import { PEER_PREFIX } from './peer-endpoint.ts';

/** A finished registry response, as the request log and the metrics see it. */
export interface FinishedRequest {
  method: string;
  /** Request target as received (path and query). */
  url: string;
  status: number;
  /** Body bytes sent. */
  bytes: number;
  seconds: number;
  /** For a manifest GET/HEAD with a valid reference: the repository (as stored) and reference asked for. */
  manifest?: { repository: string; reference: string } | undefined;
}

const METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE']);

/**
 * A bounded name for what a request did, e.g. `blob_get`, `manifest_head`, `upload_patch`,
 * `status`, `peer`, `health`, `other`: never a repository or digest (metric label cardinality).
 */
export function operationOf(method: string, url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path.startsWith(PEER_PREFIX)) return 'peer';
  if (path === '/_satellite/status') return 'status';
  if (path === '/healthz' || path === '/readyz') return 'health';
  const match = matchRoute(path);
  if (!match) return 'other';
  return `${match.route.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_${METHODS.has(method) ? method.toLowerCase() : 'other'}`;
}
