import { validate } from '../../lib/validate.ts';
import type { EventRecord } from '../db/records.ts';
import { listEvents, MAX_EVENTS_PAGE } from '../fleet/events.ts';
import type { ApiHandler } from './context.ts';

const eventsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'string', pattern: '^[1-9][0-9]{0,6}$' },
    before: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' },
    satellite: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
    kind: { enum: ['audit', 'satellite'] },
  },
} as const;

/**
 * GET /api/v1/events[?satellite=ID][&kind=audit|satellite][&limit=N][&before=SEQ] ->
 * {events, page: {limit, next}}, newest first; pass page.next as `before` for older lines.
 */
export const getEvents: ApiHandler = (r) => {
  const q = validate<{ limit?: string; before?: string; satellite?: string; kind?: EventRecord['kind'] }>(eventsQuerySchema, Object.fromEntries(r.query), 'query', 'QUERY_INVALID');
  return {
    status: 200,
    body: listEvents(r.fleet.db, {
      limit: q.limit === undefined ? undefined : Math.min(Number(q.limit), MAX_EVENTS_PAGE),
      before: q.before === undefined ? undefined : Number(q.before),
      satelliteId: q.satellite,
      kind: q.kind,
    }),
  };
};
