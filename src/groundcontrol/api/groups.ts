import { desiredStateSchema, groupTrustSchema, type DesiredImage, type GroupTrust } from '../../protocol/index.ts';
import { gcError } from '../errors.ts';
import { applyGroup, deleteGroup, getGroup, listGroups, viewGroup } from '../fleet/groups.ts';
import { SLUG, type ApiHandler } from './context.ts';
import { publishNote } from './publish-note.ts';
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
  return { status: out.created ? 201 : 200, body: publishNote(r.fleet, out) };
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
  return { status: 200, body: publishNote(r.fleet, { deleted: r.params.name, ...out }) };
};
