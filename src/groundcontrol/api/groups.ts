import { desiredStateSchema, groupTrustSchema, type DesiredImage, type GroupTrust } from '../../protocol/index.ts';
import { gcError } from '../errors.ts';
import { applyGroup, deleteGroup, getGroup, listGroups, viewGroup } from '../fleet/groups.ts';
import { SATELLITE_ID, SLUG, type ApiHandler } from './context.ts';
import { publishNote } from './publish-note.ts';
import { reachOf } from '../fleet/reach.ts';
import { validate } from '../../lib/validate.ts';
import { validateBody } from './http.ts';

// Items have the protocol's DesiredImage shape: the same schema a satellite validates.
const groupSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'images'],
  properties: {
    name: SLUG,
    images: desiredStateSchema.properties.images,
    platforms: desiredStateSchema.properties.platforms,
    trust: groupTrustSchema,
  },
} as const;

interface GroupBody {
  name: string;
  images: DesiredImage[];
  platforms?: string[];
  trust?: GroupTrust;
}

async function apply(r: Parameters<ApiHandler>[0], body: GroupBody) {
  const out = await applyGroup(r.fleet, body);
  const what = out.created ? 'created' : out.changed ? 'updated' : 'unchanged';
  return { status: out.created ? 201 : 200, body: publishNote(r.fleet, out), audit: `group ${body.name} ${what} (${body.images.length} image(s)); new desired state for ${out.published.length} satellite(s)` };
}

/** POST /api/v1/groups {name, images, platforms?} -> 201 created | 200 {group, created, changed, published} */
export const postGroup: ApiHandler = async (r) => apply(r, validateBody<GroupBody>(groupSchema, await r.body()));

/** PUT /api/v1/groups/:name {images, platforms?, name?} -> same as POST; the path names the group */
export const putGroup: ApiHandler = async (r) => {
  const raw = (await r.body()) ?? {};
  const name = r.params.name as string;
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'name' in raw && raw.name !== name) {
    throw gcError('BODY_INVALID', `invalid request body:\n  /name: "${String(raw.name)}" differs from the path's ${name}`);
  }
  const body = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? { ...raw, name } : raw;
  return apply(r, validateBody<GroupBody>(groupSchema, body));
};

/** GET /api/v1/groups -> {groups} (each with its satellites and sites) */
export const getGroups: ApiHandler = (r) => ({ status: 200, body: { groups: listGroups(r.fleet) } });

/** GET /api/v1/groups/:name -> {group} */
export const getOneGroup: ApiHandler = (r) => ({ status: 200, body: { group: viewGroup(r.fleet, getGroup(r.fleet, r.params.name as string)) } });

/** DELETE /api/v1/groups/:name -> {deleted, published} */
export const removeGroup: ApiHandler = async (r) => {
  const out = await deleteGroup(r.fleet, r.params.name as string);
  return { status: 200, body: publishNote(r.fleet, { deleted: r.params.name, ...out }), audit: `group ${r.params.name} deleted; new desired state for ${out.published.length} satellite(s)` };
};

const reachQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { satellite: SATELLITE_ID, site: SLUG },
} as const;

/**
 * GET /api/v1/groups/:name/reach[?site=S | ?satellite=ID] -> {count, first}: the satellites that
 * get the group now (an edit or delete reaches them), or those an assignment to (or unassignment
 * from) the site or satellite would change. Index reads only.
 */
export const getGroupReach: ApiHandler = (r) => {
  const q = validate<{ satellite?: string; site?: string }>(reachQuerySchema, Object.fromEntries(r.query), 'query', 'QUERY_INVALID');
  const group = r.params.name as string;
  if (q.satellite !== undefined && q.site !== undefined) throw gcError('QUERY_INVALID', 'invalid query:\n  (root): give at most one of "satellite" or "site"');
  const t = q.satellite !== undefined ? { group, satellite: q.satellite } : q.site !== undefined ? { group, site: q.site } : { group };
  return { status: 200, body: reachOf(r.fleet, t) };
};
