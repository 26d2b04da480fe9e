import { durable } from '../db/db.ts';
import { gcError } from '../errors.ts';
import { listTokens, putRegistrationToken, revokeToken } from '../fleet/tokens.ts';
import { SLUG, TTL, type ApiHandler } from './context.ts';
import { validateBody } from './http.ts';
import { VERSION } from '../../version.ts';
import { tokenView } from './satellites.ts';

const createSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { site: SLUG, ttlSeconds: TTL },
} as const;

/**
 * POST /api/v1/tokens {site?, ttlSeconds?} -> 201 {token, tokenId, site, expiresAt, version}:
 * registering creates a satellite; `version` names the release tarball for the install line.
 */
export const postToken: ApiHandler = async (r) => {
  const input = validateBody<{ site?: string; ttlSeconds?: number }>(createSchema, await r.body());
  const now = r.fleet.now();
  const token = await durable(r.fleet.db, () =>
    putRegistrationToken(r.fleet.db, {
      satelliteId: null,
      site: input.site ?? null,
      ttlSeconds: input.ttlSeconds ?? r.fleet.config.registrationTokenTtlSeconds,
      now,
    }),
  );
  r.log.info({ tokenId: token.record.id, site: token.record.site }, 'registration token created');
  return { status: 201, body: { ...tokenView(token), version: VERSION }, audit: `registration token ${token.record.id} created for site ${token.record.site ?? '(none)'}` };
};

/** GET /api/v1/tokens -> {tokens} (no secrets) */
export const getTokens: ApiHandler = (r) => ({ status: 200, body: { tokens: listTokens(r.fleet.db) } });

/** DELETE /api/v1/tokens/:id -> {deleted}: revokes an unused token */
export const removeToken: ApiHandler = async (r) => {
  const id = r.params.id as string;
  const found = await durable(r.fleet.db, () => revokeToken(r.fleet.db, id));
  if (!found) throw gcError('NOT_FOUND', `no token ${id}`);
  return { status: 200, body: { deleted: id }, audit: `token ${id} revoked` };
};
