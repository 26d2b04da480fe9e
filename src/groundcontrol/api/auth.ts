import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import { isAdminToken } from '../admin-tokens.ts';
import { cookieValue, CSRF_HEADER, csrfMatches, SESSION_COOKIE, type Session, type SessionStore } from '../console/sessions.ts';
import type { GcDb } from '../db/db.ts';
import { gcError } from '../errors.ts';
import { sha256Hex } from '../secrets.ts';
import { bearerToken } from './http.ts';

/** Who made a request: an admin token (bearer) or a console session opened with one. */
export interface Caller {
  /** For the audit log: "admin token 1a2b3c4d5e6f" or "session 0a1b… (admin token 1a2b…)". */
  actor: string;
  via: 'bearer' | 'cookie';
  session?: Session;
  cookie?: string;
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** Public handle of an admin token: a prefix of its hash (never the token). */
export const adminTokenHandle = (hash: string) => hash.slice(0, 12);

/**
 * The admin token (Authorization: Bearer) or the console's session cookie. A cookie alone never
 * changes anything: non-GET requests with it need the session's CSRF token in X-CSRF-Token and,
 * when the browser sends one, an Origin equal to this server's (and no Sec-Fetch-Site: cross-site).
 * A bearer token is not sent by browsers on their own, so it needs neither.
 */
export function authenticate(req: IncomingMessage, db: GcDb, sessions: SessionStore | undefined): Caller {
  const token = bearerToken(req);
  if (token) {
    if (!isAdminToken(db, token)) throw gcError('UNAUTHORIZED', 'the admin token is not valid');
    return { actor: `admin token ${adminTokenHandle(sha256Hex(token))}`, via: 'bearer' };
  }
  const cookie = sessions ? cookieValue(req.headers.cookie, SESSION_COOKIE) : undefined;
  const session = cookie ? sessions?.get(cookie) : undefined;
  if (!cookie || !session) throw gcError('UNAUTHORIZED', 'an admin token is required: Authorization: Bearer <token> (or log in to the console)');
  // The admin token it was opened with must still exist.
  if (db.adminTokens.get(session.adminTokenHash) === undefined) {
    sessions?.delete(cookie);
    throw gcError('UNAUTHORIZED', 'the session\'s admin token is no longer valid: log in again');
  }
  if (!SAFE_METHODS.has(req.method ?? 'GET')) {
    checkSameOrigin(req);
    if (!csrfMatches(session, req.headers[CSRF_HEADER])) throw gcError('CSRF_REJECTED', `a cookie-authenticated ${req.method} needs the session's ${CSRF_HEADER} header`);
  }
  return { actor: `session ${session.id} (admin token ${adminTokenHandle(session.adminTokenHash)})`, via: 'cookie', session, cookie };
}

/** This server's origin as the browser sees it (scheme from the socket, host from Host). */
export function ownOrigin(req: IncomingMessage): string {
  return `${isTls(req) ? 'https' : 'http'}://${req.headers.host ?? ''}`;
}

export function isTls(req: IncomingMessage): boolean {
  return req.socket instanceof TLSSocket;
}

/** Refuses a browser request sent from another site (Origin or Sec-Fetch-Site say so). */
export function checkSameOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== ownOrigin(req)) throw gcError('CSRF_REJECTED', `cross-origin request refused (Origin ${origin.slice(0, 200)})`);
  if (req.headers['sec-fetch-site'] === 'cross-site') throw gcError('CSRF_REJECTED', 'cross-site request refused (Sec-Fetch-Site)');
}
