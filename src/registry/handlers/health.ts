import type { IncomingMessage, ServerResponse } from 'node:http';

/** One check's verdict: 'ok', or a short stable code saying what is wrong. */
export type CheckResult = 'ok' | string;

export interface HealthReport {
  /** ok; degraded: serving, but something needs attention (DISK_FULL, STORE_READ_ONLY); unavailable: not ready. */
  status: 'ok' | 'degraded' | 'unavailable';
  checks: Record<string, CheckResult>;
  /** Stable codes of what is degraded, e.g. ["DISK_FULL"]. */
  degraded: string[];
}

/** What the daemon plugs in: liveness and readiness, computed on each request (cheap checks only). */
export interface HealthProbe {
  live(): HealthReport;
  ready(): HealthReport;
}

const PATHS: Record<string, keyof HealthProbe> = { '/healthz': 'live', '/readyz': 'ready' };

/**
 * GET/HEAD /healthz and /readyz, answered before authentication: 200 when ok or degraded, 503 when
 * unavailable. The body names checks and codes only (no versions, paths, sizes or names).
 * Returns false when the request is not for these paths.
 */
export function handleHealth(req: IncomingMessage, res: ServerResponse, probe: HealthProbe | undefined): boolean {
  if (!probe || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
  const path = (req.url ?? '').split('?')[0] ?? '';
  const which = PATHS[path];
  if (!which) return false;
  req.resume();
  let report: HealthReport;
  try {
    report = probe[which]();
  } catch {
    report = { status: 'unavailable', checks: { probe: 'FAILED' }, degraded: [] };
  }
  const body = JSON.stringify(report);
  res.writeHead(report.status === 'unavailable' ? 503 : 200, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
