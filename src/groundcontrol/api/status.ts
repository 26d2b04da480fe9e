import { logCounters } from '../../lib/json-logger.ts';
import { validate } from '../../lib/validate.ts';
import { SATELLITE_STATES, type SatelliteState } from '../db/indexes.ts';
import { fleetStatus, MAX_PAGE, type StatusQuery } from '../fleet/status.ts';
import { SLUG, type ApiHandler } from './context.ts';

/** The status and satellite list filters and paging, as query strings. */
const pageQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    site: SLUG,
    group: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' },
    state: { type: 'string', enum: SATELLITE_STATES },
    limit: { type: 'string', pattern: '^[1-9][0-9]{0,6}$' },
    after: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
  },
} as const;

/** Parses ?site&group&state&limit&after (400 QUERY_INVALID naming the bad key). */
export function pageQuery(query: URLSearchParams): StatusQuery {
  const q = validate<{ site?: string; group?: string; state?: SatelliteState; limit?: string; after?: string }>(
    pageQuerySchema,
    Object.fromEntries(query),
    'query',
    'QUERY_INVALID',
  );
  return { site: q.site, group: q.group, state: q.state, limit: q.limit === undefined ? undefined : Math.min(Number(q.limit), MAX_PAGE), after: q.after };
}

/**
 * GET /api/v1/status[?site=S][&group=G][&state=online|offline|unknown|in-sync|out-of-sync]
 * [&limit=N][&after=ID] -> FleetStatus: fleet-wide counts, one page of rows in id order and
 * page.next for the following page; plus `log`: Ground Control's own log counters (dropped lines).
 */
export const getStatus: ApiHandler = (r) => ({
  status: 200,
  body: { ...fleetStatus(r.fleet, pageQuery(r.query)), log: logCounters(r.log)?.stats() ?? null },
});

/** GET /api/v1/healthz -> {ok, broker} (no token: for load balancers and probes) */
export const getHealth: ApiHandler = (r) => ({ status: 200, body: { ok: true, broker: { connected: r.fleet.publisher.connected } } });
