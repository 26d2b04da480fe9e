import { isAdminToken } from '../admin-tokens.ts';
import { cookieHeader } from '../console/sessions.ts';
import { gcError } from '../errors.ts';
import { sha256Hex } from '../secrets.ts';
import { adminTokenHandle, checkSameOrigin, isTls } from './auth.ts';
import type { ApiHandler, ApiRequest } from './context.ts';
import { validateBody } from './http.ts';

const loginSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['token'],
  properties: { token: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

function sessionsOf(r: ApiRequest) {
  if (!r.sessions) throw gcError('NOT_FOUND', 'the console is disabled (console.enabled: false)');
  return r.sessions;
}

/**
 * POST /api/v1/session {token} -> 201 {actor, csrfToken, expiresAt} and the session cookie
 * (HttpOnly, SameSite=Strict). The console's login: an admin token for a session.
 */
export const postSession: ApiHandler = async (r) => {
  const sessions = sessionsOf(r);
  // Login CSRF: a page elsewhere must not log a browser into its own session.
  checkSameOrigin(r.req);
  const { token } = validateBody<{ token: string }>(loginSchema, await r.body());
  if (!isAdminToken(r.fleet.db, token)) throw gcError('UNAUTHORIZED', 'the admin token is not valid');
  const hash = sha256Hex(token);
  const { cookie, session } = sessions.create(hash);
  const actor = `session ${session.id} (admin token ${adminTokenHandle(hash)})`;
  r.log.info({ session: session.id }, 'console login');
  return {
    status: 201,
    headers: { 'Set-Cookie': cookieHeader(cookie, sessions.ttlSeconds, isTls(r.req)) },
    body: { actor, csrfToken: session.csrfToken, expiresAt: new Date(session.expiresAt).toISOString() },
    audit: `${actor} logged in`,
    actor,
  };
};

/** GET /api/v1/session -> {actor, via, csrfToken?, expiresAt?}: who the caller is (the console asks on load). */
export const getSession: ApiHandler = (r) => {
  const c = r.caller;
  if (!c) throw gcError('UNAUTHORIZED', 'not logged in');
  return {
    status: 200,
    body: { actor: c.actor, via: c.via, ...(c.session ? { csrfToken: c.session.csrfToken, expiresAt: new Date(c.session.expiresAt).toISOString() } : {}) },
  };
};

/** DELETE /api/v1/session -> {loggedOut}: ends the cookie's session and clears the cookie. */
export const deleteSession: ApiHandler = (r) => {
  const sessions = sessionsOf(r);
  const c = r.caller;
  if (!c?.cookie) throw gcError('BODY_INVALID', 'no console session to end (this request has no session cookie)');
  sessions.delete(c.cookie);
  r.live?.endSession(c.cookie);
  return { status: 200, headers: { 'Set-Cookie': cookieHeader('', 0, isTls(r.req)) }, body: { loggedOut: true }, audit: `${c.actor} logged out` };
};
