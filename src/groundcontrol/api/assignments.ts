import { assign, listAssignments, unassign, type AssignmentTarget } from '../fleet/assignments.ts';
import { gcError } from '../errors.ts';
import { SATELLITE_ID, SLUG, type ApiHandler } from './context.ts';
import { publishNote } from './publish-note.ts';
import { validateBody } from './http.ts';
import { validate } from '../../lib/validate.ts';

const targetSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['group'],
  properties: { group: SLUG, satellite: SATELLITE_ID, site: SLUG },
} as const;

function target(input: { group: string; satellite?: string; site?: string }, where: string): AssignmentTarget {
  if ((input.satellite === undefined) === (input.site === undefined)) {
    throw gcError(where === 'query' ? 'QUERY_INVALID' : 'BODY_INVALID', `invalid ${where}:\n  (root): give exactly one of "satellite" or "site"`);
  }
  return input.satellite !== undefined ? { group: input.group, satellite: input.satellite } : { group: input.group, site: input.site as string };
}

/** POST /api/v1/assignments {group, satellite | site} -> 201 {assignment, published} */
export const postAssignment: ApiHandler = async (r) => {
  const input = validateBody<{ group: string; satellite?: string; site?: string }>(targetSchema, await r.body());
  const t = target(input, 'request body');
  const out = await assign(r.fleet, t);
  return { status: 201, body: publishNote(r.fleet, out), audit: `group ${t.group} assigned to ${'site' in t ? `site ${t.site}` : `satellite ${t.satellite}`}; new desired state for ${out.published.length} satellite(s)` };
};

/** GET /api/v1/assignments[?group=G] -> {assignments} */
export const getAssignments: ApiHandler = (r) => {
  const group = r.query.get('group');
  const all = listAssignments(r.fleet);
  return { status: 200, body: { assignments: group === null ? all : all.filter((a) => a.group === group) } };
};

/** DELETE /api/v1/assignments?group=G&satellite=ID | &site=S -> {deleted, published} */
export const deleteAssignment: ApiHandler = async (r) => {
  const input = validate<{ group: string; satellite?: string; site?: string }>(targetSchema, Object.fromEntries(r.query), 'query', 'QUERY_INVALID');
  const t = target(input, 'query');
  const out = await unassign(r.fleet, t);
  return { status: 200, body: publishNote(r.fleet, { deleted: t, ...out }), audit: `group ${t.group} unassigned from ${'site' in t ? `site ${t.site}` : `satellite ${t.satellite}`}; new desired state for ${out.published.length} satellite(s)` };
};
