import { registerRequestSchema, type RegisterRequest } from '../../protocol/index.ts';
import { register } from '../fleet/register.ts';
import type { ApiHandler } from './context.ts';
import { validateBody } from './http.ts';

/** POST /api/v1/register RegisterRequest -> 200 RegisterResponse. No admin token: the body's token is the credential. */
export const postRegister: ApiHandler = async (r) => {
  const input = validateBody<RegisterRequest>(registerRequestSchema, await r.body());
  const out = await register(r.fleet, input);
  return { status: 200, body: out, actor: 'registration token', satelliteId: out.satelliteId, audit: `satellite ${out.satelliteId} registered${input.hostname ? ` from host ${input.hostname}` : ''}` };
};
