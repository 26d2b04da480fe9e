import { validate } from '../../lib/validate.ts';
import { gcError } from '../errors.ts';
import type { EventRecord } from '../db/records.ts';
import { listEvents, MAX_EVENTS_PAGE } from '../fleet/events.ts';
import type { ApiHandler } from './context.ts';

const SEQ = { type: 'string', pattern: '^[0-9]{1,16}$' } as const;

const eventsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'string', pattern: '^[1-9][0-9]{0,6}$' },
    before: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' },
    after: SEQ,
    satellite: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
    kind: { enum: ['audit', 'satellite'] },
    /** Comma-separated event types (audit, online, offline, image.failed, image.*). */
    type: { type: 'string', pattern: '^[a-z*][a-z0-9.*-]{0,63}(,[a-z*][a-z0-9.*-]{0,63}){0,19}$' },
    since: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})$' },
  },
} as const;

interface EventsQueryText {
  limit?: string;
  before?: string;
  after?: string;
  satellite?: string;
  kind?: EventRecord['kind'];
  type?: string;
  since?: string;
}

/**
 * GET /api/v1/events[?satellite=ID][&kind=audit|satellite][&type=T,T][&since=ISO][&limit=N]
 * [&before=SEQ | &after=SEQ] -> {events, page: {limit, next, newest}}. Newest first (pass
 * page.next as `before` for older lines); with `after`, the lines after SEQ oldest first, and
 * page.next is the `after` of the next poll (how `groundcontrol events --follow` reads).
 */
export const getEvents: ApiHandler = (r) => {
  const q = validate<EventsQueryText>(eventsQuerySchema, Object.fromEntries(r.query), 'query', 'QUERY_INVALID');
  if (q.before !== undefined && q.after !== undefined) throw gcError('QUERY_INVALID', 'give one of before and after, not both');
  if (q.since !== undefined && Number.isNaN(Date.parse(q.since))) throw gcError('QUERY_INVALID', `since is not a valid time: ${q.since}`);
  return {
    status: 200,
    body: listEvents(r.fleet.db, {
      limit: q.limit === undefined ? undefined : Math.min(Number(q.limit), MAX_EVENTS_PAGE),
      before: q.before === undefined ? undefined : Number(q.before),
      after: q.after === undefined ? undefined : Number(q.after),
      satelliteId: q.satellite,
      kind: q.kind,
      types: q.type?.split(','),
      since: q.since === undefined ? undefined : new Date(q.since).toISOString(),
    }),
  };
};
