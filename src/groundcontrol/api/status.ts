import { logCounters } from '../../lib/json-logger.ts';
import { validate } from '../../lib/validate.ts';
import { SATELLITE_STATES, type SatelliteState } from '../db/indexes.ts';
import { fleetStatus, MAX_PAGE, SORT_KEY_NAMES, type SortKey, type StatusQuery } from '../fleet/status.ts';
import { gcError } from '../errors.ts';
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
    sort: { type: 'string', enum: SORT_KEY_NAMES },
    dir: { type: 'string', enum: ['asc', 'desc'] },
    offset: { type: 'string', pattern: '^(0|[1-9][0-9]{0,6})$' },
  },
} as const;

/** Parses ?site&group&state&limit&after (400 QUERY_INVALID naming the bad key). */
export function pageQuery(query: URLSearchParams): StatusQuery {
  const q = validate<{ site?: string; group?: string; state?: SatelliteState; limit?: string; after?: string; sort?: SortKey; dir?: 'asc' | 'desc'; offset?: string }>(
    pageQuerySchema,
    Object.fromEntries(query),
    'query',
    'QUERY_INVALID',
  );
  if (q.after !== undefined && (q.sort !== undefined || q.dir !== undefined || q.offset !== undefined)) {
    throw gcError('QUERY_INVALID', 'invalid query:\n  (root): "after" pages in id order; a sorted listing pages with "offset"');
  }
  return {
    site: q.site,
    group: q.group,
    state: q.state,
    limit: q.limit === undefined ? undefined : Math.min(Number(q.limit), MAX_PAGE),
    after: q.after,
    sort: q.sort,
    desc: q.dir === 'desc',
    offset: q.offset === undefined ? undefined : Number(q.offset),
  };
}

/**
 * GET /api/v1/status[?site=S][&group=G][&state=online|offline|unknown|in-sync|out-of-sync]
 * [&limit=N][&after=ID] -> FleetStatus: fleet-wide counts, one page of rows in id order and
 * page.next for the following page; plus `log`: Ground Control's own log counters (dropped lines).
 * [&sort=COLUMN][&dir=asc|desc][&offset=N]: rows ordered by a column across every matching
 * satellite, page.nextOffset for the following page.
 */
export const getStatus: ApiHandler = (r) => ({
  status: 200,
  body: { ...fleetStatus(r.fleet, pageQuery(r.query)), log: logCounters(r.log)?.stats() ?? null },
});

/** GET /api/v1/metrics -> Prometheus text: the fleet by state, the broker link, API requests. */
export const getMetrics: ApiHandler = async (r) => {
  if (!r.metrics) throw gcError('NOT_FOUND', 'no metrics');
  return { status: 200, body: null, text: { contentType: r.metrics.registry.contentType, body: await r.metrics.registry.metrics() } };
};

/** GET /api/v1/healthz -> {ok, broker} (no token: for load balancers and probes) */
export const getHealth: ApiHandler = (r) => ({ status: 200, body: { ok: true, broker: { connected: r.fleet.publisher.connected } } });
