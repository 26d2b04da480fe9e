import { createSatellite, createSatelliteToken, deleteSatellite, listSatellites, showSatellite, updateSatellite } from '../fleet/satellites.ts';
import type { NewToken } from '../fleet/tokens.ts';
import { NAME, SLUG_OR_NULL, TTL, type ApiHandler } from './context.ts';
import { validateBody } from './http.ts';
import { pageQuery } from './status.ts';

const createSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: NAME, site: SLUG_OR_NULL, ttlSeconds: TTL },
} as const;

const patchSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { name: NAME, site: SLUG_OR_NULL },
} as const;

const tokenSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { ttlSeconds: TTL },
} as const;

/** The secret is in this answer only; afterwards the token is known by its id. */
export function tokenView(t: NewToken) {
  return { token: t.token, tokenId: t.record.id, satelliteId: t.record.satelliteId, site: t.record.site, expiresAt: t.record.expiresAt };
}

/** POST /api/v1/satellites {name, site?, ttlSeconds?} -> 201 {satellite, registration} */
export const postSatellite: ApiHandler = async (r) => {
  const input = validateBody<{ name: string; site?: string | null; ttlSeconds?: number }>(createSchema, await r.body());
  const { satellite, registration } = await createSatellite(r.fleet, input);
  return { status: 201, body: { satellite, registration: tokenView(registration) } };
};

/** GET /api/v1/satellites[?site=S&group=G&state=X&limit=N&after=ID] -> {satellites, page}, in id order */
export const getSatellites: ApiHandler = (r) => ({ status: 200, body: listSatellites(r.fleet, pageQuery(r.query)) });

/** GET /api/v1/satellites/:id -> {satellite} with groups, desired state, status and tokens */
export const getSatellite: ApiHandler = (r) => ({ status: 200, body: { satellite: showSatellite(r.fleet, r.params.id as string) } });

/** PATCH /api/v1/satellites/:id {name?, site?} -> {satellite}; a new site means new groups */
export const patchSatellite: ApiHandler = async (r) => {
  const patch = validateBody<{ name?: string; site?: string | null }>(patchSchema, await r.body());
  return { status: 200, body: { satellite: await updateSatellite(r.fleet, r.params.id as string, patch) } };
};

/** DELETE /api/v1/satellites/:id -> {deleted} */
export const removeSatellite: ApiHandler = async (r) => {
  await deleteSatellite(r.fleet, r.params.id as string);
  return { status: 200, body: { deleted: r.params.id } };
};

/** POST /api/v1/satellites/:id/tokens {ttlSeconds?} -> 201 {token,...}: re-registration */
export const postSatelliteToken: ApiHandler = async (r) => {
  const { ttlSeconds } = validateBody<{ ttlSeconds?: number }>(tokenSchema, await r.body());
  return { status: 201, body: tokenView(await createSatelliteToken(r.fleet, r.params.id as string, ttlSeconds)) };
};
