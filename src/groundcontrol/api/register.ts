import { registerRequestSchema, type RegisterRequest } from '../../protocol/index.ts';
import { isSatelliteError } from '../../lib/errors.ts';
import { register } from '../fleet/register.ts';
import { statusOf } from '../errors.ts';
import type { ApiHandler } from './context.ts';
import { validateBody } from './http.ts';

/**
 * POST /api/v1/register RegisterRequest -> 200 RegisterResponse. No admin token: the body's token is
 * the credential. Refusals count against the client's address (429 past its budget) and are logged
 * as one summary line per interval.
 */
export const postRegister: ApiHandler = async (r) => {
  r.registerGuard.check(r.remote);
  try {
    const input = validateBody<RegisterRequest>(registerRequestSchema, await r.body());
    const out = await register(r.fleet, input);
    return { status: 200, body: out, actor: 'registration token', satelliteId: out.satelliteId, audit: `satellite ${out.satelliteId} registered${input.hostname ? ` from host ${input.hostname}` : ''}` };
  } catch (err) {
    const status = statusOf(err);
    if (status >= 400 && status < 500 && isSatelliteError(err)) r.registerGuard.failed(r.remote, err.code);
    throw err;
  }
};
