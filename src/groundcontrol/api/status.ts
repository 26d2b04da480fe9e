import { fleetStatus } from '../fleet/status.ts';
import type { ApiHandler } from './context.ts';

/** GET /api/v1/status[?site=S] -> FleetStatus */
export const getStatus: ApiHandler = (r) => ({ status: 200, body: fleetStatus(r.fleet, { site: r.query.get('site') ?? undefined }) });

/** GET /api/v1/healthz -> {ok, broker} (no token: for load balancers and probes) */
export const getHealth: ApiHandler = (r) => ({ status: 200, body: { ok: true, broker: { connected: r.fleet.publisher.connected } } });
