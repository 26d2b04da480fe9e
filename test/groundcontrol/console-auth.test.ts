import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGroundControl, TEST_ADMIN_TOKEN, type GroundControl } from '../helpers/groundcontrol.ts';

/** A raw request as a browser would send it: cookie, CSRF header and Origin as given. */
async function send(gc: GroundControl, method: string, path: string, opts: { cookie?: string; csrf?: string; origin?: string; body?: unknown } = {}) {
  const res = await fetch(`${gc.url}${path}`, {
    method,
    redirect: 'manual',
    headers: {
      ...(opts.cookie ? { Cookie: opts.cookie } : {}),
      ...(opts.csrf ? { 'X-CSRF-Token': opts.csrf } : {}),
      ...(opts.origin ? { Origin: opts.origin } : {}),
      ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body };
}

test('console: session login (cookie flags), CSRF on cookie-authenticated changes, logout, 401 without auth, the audit log', async (t) => {
  const gc = await startGroundControl(t);
  const origin = gc.url;

  // Nothing without credentials, and no session from a wrong token or from another origin.
  assert.equal((await send(gc, 'GET', '/api/v1/status')).status, 401);
  assert.equal((await send(gc, 'GET', '/api/v1/events')).status, 401);
  assert.equal((await send(gc, 'GET', '/api/v1/session')).status, 401);
  const wrong = await send(gc, 'POST', '/api/v1/session', { body: { token: 'hsa_not-the-token-at-all-000' }, origin });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get('set-cookie'), null);
  const crossLogin = await send(gc, 'POST', '/api/v1/session', { body: { token: TEST_ADMIN_TOKEN }, origin: 'http://evil.example' });
  assert.equal(crossLogin.status, 403);
  assert.equal(crossLogin.body.error.code, 'CSRF_REJECTED');

  // Login: an HttpOnly, SameSite=Strict cookie and a CSRF token in the body.
  const login = await send(gc, 'POST', '/api/v1/session', { body: { token: TEST_ADMIN_TOKEN }, origin });
  assert.equal(login.status, 201);
  const setCookie = login.headers.get('set-cookie') ?? '';
  assert.match(setCookie, /^gc_session=[A-Za-z0-9_-]{43}; /);
  assert.match(setCookie, /; HttpOnly/);
  assert.match(setCookie, /; SameSite=Strict/);
  assert.match(setCookie, /; Path=\//);
  assert.match(setCookie, /; Max-Age=28800/);
  const cookie = setCookie.split(';')[0] as string;
  const csrf = login.body.csrfToken as string;
  assert.ok(csrf.length >= 32);
  assert.match(login.body.actor, /^session [0-9a-f]{12} \(admin token [0-9a-f]{12}\)$/);
  assert.ok(!JSON.stringify(login.body).includes(TEST_ADMIN_TOKEN), 'the token is not echoed');

  // Reads work with the cookie alone; the session tells the page its CSRF token after a reload.
  const status = await send(gc, 'GET', '/api/v1/status', { cookie });
  assert.equal(status.status, 200);
  assert.equal(status.body.counts.failed, 0);
  const session = await send(gc, 'GET', '/api/v1/session', { cookie });
  assert.equal(session.status, 200);
  assert.equal(session.body.csrfToken, csrf);
  assert.equal(session.body.via, 'cookie');

  // Changes with the cookie need the CSRF header, a matching one, and no foreign Origin.
  const noCsrf = await send(gc, 'POST', '/api/v1/tokens', { cookie, origin, body: { site: 'x' } });
  assert.equal(noCsrf.status, 403);
  assert.equal(noCsrf.body.error.code, 'CSRF_REJECTED');
  assert.equal((await send(gc, 'POST', '/api/v1/tokens', { cookie, origin, csrf: `${csrf.slice(0, -1)}A`, body: {} })).status, 403);
  assert.equal((await send(gc, 'POST', '/api/v1/tokens', { cookie, origin: 'http://127.0.0.1:1', csrf, body: {} })).status, 403);
  const none = await gc.api('GET', '/api/v1/tokens');
  assert.equal(none.body.tokens.length, 0, 'nothing was created by the refused requests');
  const made = await send(gc, 'POST', '/api/v1/groups', { cookie, origin, csrf, body: { name: 'edge', images: [{ repository: 'apps/web', tags: ['v1'] }] } });
  assert.equal(made.status, 201);
  // The bearer token needs no CSRF header (browsers never send it on their own).
  assert.equal((await gc.api('POST', '/api/v1/satellites', { name: 'shop-1', site: 'berlin' })).status, 201);

  // The audit log names who changed what, newest first; paged.
  const events = await gc.api('GET', '/api/v1/events?kind=audit');
  assert.equal(events.status, 200);
  const actions = events.body.events.map((e: { action: string }) => e.action);
  assert.deepEqual(actions, ['POST /api/v1/satellites', 'POST /api/v1/groups', 'POST /api/v1/session', 'POST /api/v1/session']);
  const [createdSat, createdGroup, loggedIn, refused] = events.body.events;
  assert.match(createdSat.actor, /^admin token [0-9a-f]{12}$/);
  assert.match(createdSat.message, /^satellite shop-1-[0-9a-z]+ \(shop-1\) created at site berlin/);
  assert.equal(createdGroup.actor, login.body.actor);
  assert.match(createdGroup.message, /^group edge created \(1 image\(s\)\)/);
  assert.equal(loggedIn.message, `${login.body.actor} logged in`);
  assert.equal(loggedIn.actor, login.body.actor);
  assert.equal(refused.status, 401);
  assert.match(refused.message, /^console login refused/);
  const page1 = await gc.api('GET', '/api/v1/events?limit=2');
  assert.equal(page1.body.events.length, 2);
  const page2 = await gc.api('GET', `/api/v1/events?limit=2&before=${page1.body.page.next}`);
  assert.deepEqual(page2.body.events.map((e: { message: string }) => e.message.split(':')[0]), [`${login.body.actor} logged in`, 'console login refused']);
  assert.equal(page2.body.page.next, null);
  assert.equal((await gc.api('GET', '/api/v1/events?kind=bogus')).status, 400);

  // Prometheus metrics behind the same auth: the fleet by state from the counters, API requests by route.
  assert.equal((await send(gc, 'GET', '/api/v1/metrics')).status, 401);
  const metrics = await fetch(`${gc.url}/api/v1/metrics`, { headers: { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await metrics.text();
  assert.match(text, /^groundcontrol_satellites\{state="all"\} 1$/m);
  assert.match(text, /^groundcontrol_satellites\{state="never_seen"\} 1$/m);
  assert.match(text, /^groundcontrol_satellites\{state="failed"\} 0$/m);
  assert.match(text, /^groundcontrol_broker_connected 1$/m);
  assert.match(text, /^groundcontrol_console_sessions 1$/m);
  assert.match(text, /^groundcontrol_api_requests_total\{method="POST",route="\/api\/v1\/tokens",status_class="4xx"\} 3$/m);
  assert.match(text, /^groundcontrol_api_requests_total\{method="GET",route="\/api\/v1\/status",status_class="2xx"\} 1$/m);
  assert.match(text, /^groundcontrol_api_request_duration_seconds_count\{method="POST",route="\/api\/v1\/groups"\} 1$/m);

  // Logout ends the session and clears the cookie; the cookie is then worthless.
  const noCsrfLogout = await send(gc, 'DELETE', '/api/v1/session', { cookie, origin });
  assert.equal(noCsrfLogout.status, 403);
  const logout = await send(gc, 'DELETE', '/api/v1/session', { cookie, origin, csrf });
  assert.equal(logout.status, 200);
  assert.match(logout.headers.get('set-cookie') ?? '', /^gc_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0/);
  assert.equal((await send(gc, 'GET', '/api/v1/status', { cookie })).status, 401);

  // The console itself: the page and its bundle, from Ground Control, with a strict CSP.
  const redirect = await send(gc, 'GET', '/console');
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.get('location'), '/console/');
  const page = await send(gc, 'GET', '/console/');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
  assert.match(page.body, /<script type="module" src="\/console\/app.js">/);
  const js = await send(gc, 'GET', '/console/app.js');
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
  assert.ok(js.body.length > 5_000 && !/https?:\/\/(?!www\.w3\.org)[a-z]/.test(js.body.replace(/http:\/\/www\.w3\.org[^"']*/g, '')), 'bundled, no remote URL');
  const etag = js.headers.get('etag') ?? '';
  const again = await fetch(`${gc.url}/console/app.js`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  await again.text();
  assert.equal((await send(gc, 'GET', '/console/nope.js')).status, 404);
  assert.equal((await send(gc, 'POST', '/console/')).status, 405);
});

test('console disabled: no page, no login', async (t) => {
  const gc = await startGroundControl(t, { config: { console: { enabled: false } } });
  assert.equal((await send(gc, 'GET', '/console/')).status, 404);
  assert.equal((await send(gc, 'POST', '/api/v1/session', { body: { token: TEST_ADMIN_TOKEN }, origin: gc.url })).status, 404);
  assert.equal((await gc.api('GET', '/api/v1/status')).status, 200);
});
