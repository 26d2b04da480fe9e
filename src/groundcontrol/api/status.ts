import { logCounters } from '../../lib/json-logger.ts';
import { fleetStatus } from '../fleet/status.ts';
import type { ApiHandler } from './context.ts';

/** GET /api/v1/status[?site=S] -> FleetStatus plus `log`: Ground Control's own log counters (dropped lines). */
export const getStatus: ApiHandler = (r) => ({
  status: 200,
  body: { ...fleetStatus(r.fleet, { site: r.query.get('site') ?? undefined }), log: logCounters(r.log)?.stats() ?? null },
});

/** GET /api/v1/healthz -> {ok, broker} (no token: for load balancers and probes) */
export const getHealth: ApiHandler = (r) => ({ status: 200, body: { ok: true, broker: { connected: r.fleet.publisher.connected } } });
