import { validate } from '../../lib/validate.ts';
import { SERIES_RANGES, seriesOf, type SeriesRange } from '../fleet/series.ts';
import type { ApiHandler } from './context.ts';

const seriesQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { range: { enum: Object.keys(SERIES_RANGES) } },
} as const;

/**
 * GET /api/v1/satellites/:id/series[?range=6h|24h|48h|7d|30d] -> SeriesView: bytes per bucket
 * (five minutes up to 48h, hourly beyond) of WAN, served, saved by the cache and peer traffic.
 */
export const getSeries: ApiHandler = (r) => {
  const q = validate<{ range?: SeriesRange }>(seriesQuerySchema, Object.fromEntries(r.query), 'query', 'QUERY_INVALID');
  return { status: 200, body: seriesOf(r.fleet.db, r.params.id as string, q.range ?? '24h', r.fleet.now().getTime()) };
};
