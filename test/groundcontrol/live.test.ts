import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import pino from 'pino';
import { LiveHub } from '../../src/groundcontrol/api/live.ts';
import type { ApiRequest } from '../../src/groundcontrol/api/context.ts';
import { SessionStore } from '../../src/groundcontrol/console/sessions.ts';
import { durable } from '../../src/groundcontrol/db/db.ts';
import { sha256Hex } from '../../src/groundcontrol/secrets.ts';
import { topic } from '../../src/protocol/index.ts';
import { addAndRegister, connectSatellite, startGroundControl, TEST_ADMIN_TOKEN } from '../helpers/groundcontrol.ts';
import { testFleetContext } from '../helpers/fleet-context.ts';
import { openSse } from '../helpers/sse.ts';

const stateReport = (id: string, seq: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: 'state', satelliteId: id, seq, at: new Date().toISOString(), version: '0.3.0', desiredGeneration: null, appliedGeneration: null,
    images: [], disk: { blobs: 1, bytes: 100 }, lastSync: null, upstream: { reachable: null, lastError: null }, ...extra,
  });

async function login(url: string): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${url}/api/v1/session`, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: url }, body: JSON.stringify({ token: TEST_ADMIN_TOKEN }) });
  assert.equal(res.status, 201);
  const body = (await res.json()) as { csrfToken: string };
  const cookie = /gc_session=[^;]+/.exec(res.headers.get('set-cookie') ?? '')?.[0];
  assert.ok(cookie);
  return { cookie, csrf: body.csrfToken };
}

test('live feed (SSE): refused without auth or from another site; changes after reports, coalesced; heartbeat; cap; logout ends it; series API', async (t) => {
  const gc = await startGroundControl(t, { config: { api: { live: { maxConnections: 3, heartbeatSeconds: 1 } } } });
  const a = await addAndRegister(gc, 'live-a', 'berlin');
  const live = `${gc.url}/api/v1/live`;
  const bearer = { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

  // Nothing without credentials or with a wrong token.
  assert.equal((await openSse(t, live)).status, 401);
  assert.equal((await openSse(t, live, { Authorization: 'Bearer hsa_wrong-token-000000000000' })).status, 401);

  const s = await openSse(t, live, bearer);
  assert.equal(s.status, 200);
  assert.match(s.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.equal(s.headers.get('cache-control'), 'no-store');
  const hello = JSON.parse((await s.next((e) => e.event === 'hello')).data);
  assert.equal(hello.counts.satellites, 1);

  // Five reports in a burst: the satellite is named, in at most two messages (the first change
  // goes out at once, the rest wait for the next second).
  const client = await connectSatellite(t, gc.mqttUrl as string, a);
  for (let seq = 1; seq <= 5; seq++) await client.publishAsync(topic(a.satelliteId, 'state'), stateReport(a.satelliteId, seq), { qos: 1 });
  const mentions = () => s.events.filter((e) => e.event === 'changes' && JSON.parse(e.data).ids.includes(a.satelliteId));
  const first = JSON.parse((await s.next((e) => e.event === 'changes' && JSON.parse(e.data).ids.includes(a.satelliteId), 10_000, 'changes naming the satellite')).data);
  assert.equal(first.more, false);
  assert.equal(typeof first.counts.online, 'number');
  await new Promise((r) => setTimeout(r, 2500));
  assert.ok(mentions().length >= 1 && mentions().length <= 2, `coalesced: ${mentions().length} messages for 5 reports`);
  // Heartbeat comments (heartbeatSeconds 1 here; 15 by default).
  await s.next((e) => e.event === ':' && e.data === 'ping', 5000, 'a heartbeat');

  // A change through the API: every page refetches (config: true).
  assert.equal((await gc.api('PUT', '/api/v1/groups/web', { name: 'web', images: [{ repository: 'apps/web', tags: ['1'] }] })).status, 201);
  await s.next((e) => e.event === 'changes' && JSON.parse(e.data).config === true, 10_000, 'a config change');

  // Console session: the cookie opens a stream; with another site's Origin or Sec-Fetch-Site it is refused.
  const session = await login(gc.url);
  assert.equal((await openSse(t, live, { Cookie: session.cookie, Origin: 'http://127.0.0.1:1' })).status, 403);
  assert.equal((await openSse(t, live, { Cookie: session.cookie, 'Sec-Fetch-Site': 'cross-site' })).status, 403);
  const c = await openSse(t, live, { Cookie: session.cookie, 'Sec-Fetch-Site': 'same-origin' });
  assert.equal(c.status, 200);
  await c.next((e) => e.event === 'hello');

  // At most api.live.maxConnections (3 here) streams: the fourth is refused with 503 and Retry-After.
  const third = await openSse(t, live, bearer);
  assert.equal(third.status, 200);
  const fourth = await openSse(t, live, bearer);
  assert.equal(fourth.status, 503);
  assert.equal(fourth.headers.get('retry-after'), '10');
  third.close();
  await new Promise((r) => setTimeout(r, 300));
  const again = await openSse(t, live, bearer);
  assert.equal(again.status, 200, 'a closed stream frees its place');
  again.close();

  // Logout ends the session's stream at once, with an end event; the bearer stream goes on.
  const out = await fetch(`${gc.url}/api/v1/session`, { method: 'DELETE', headers: { Cookie: session.cookie, 'X-CSRF-Token': session.csrf, Origin: gc.url } });
  assert.equal(out.status, 200);
  await out.text();
  const end = await c.next((e) => e.event === 'end', 5000, 'the end event');
  assert.equal(JSON.parse(end.data).reason, 'logged out');
  await c.ended;
  assert.equal((await openSse(t, live, { Cookie: session.cookie })).status, 401, 'the cookie no longer opens a stream');
  const seen = s.events.length;
  await s.next((e) => e.event === ':' && s.events.indexOf(e) >= seen, 5000, 'the bearer stream still beating');
  assert.equal(s.events.some((e) => e.event === 'end'), false);

  // The series API: authenticated, validated, in bytes per bucket.
  const proc = (uptimeSeconds: number) => ({ rssBytes: 1, uptimeSeconds, arch: 'x64' });
  const traffic = (n: number) => ({ bytesFromUpstream: n, bytesServed: 2 * n, bytesFromPeers: 0, bytesToPeers: 0 });
  await client.publishAsync(topic(a.satelliteId, 'state'), stateReport(a.satelliteId, 6, { traffic: traffic(1000), process: proc(60) }), { qos: 1 });
  await client.publishAsync(topic(a.satelliteId, 'state'), stateReport(a.satelliteId, 7, { traffic: traffic(5000), process: proc(120) }), { qos: 1 });
  let series: any;
  for (let i = 0; i < 100; i++) {
    series = (await gc.api('GET', `/api/v1/satellites/${a.satelliteId}/series?range=6h`)).body;
    if (series.values.bytesFromUpstream.some((v: number) => v > 0)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(series.bucketSeconds, 300);
  assert.equal(series.t.length, 72);
  assert.equal(series.values.bytesFromUpstream.reduce((x: number, y: number) => x + y, 0), 4000);
  assert.equal(series.values.bytesServed.reduce((x: number, y: number) => x + y, 0), 8000);
  assert.equal((await gc.api('GET', `/api/v1/satellites/${a.satelliteId}/series`, undefined, null)).status, 401);
  assert.equal((await gc.api('GET', `/api/v1/satellites/${a.satelliteId}/series?range=1y`)).status, 400);
  assert.equal((await gc.api('GET', '/api/v1/satellites/nobody/series')).status, 404);
});

test('live feed: a client that stops reading is cut once its unsent bytes pass the limit', async (t) => {
  const ctx = await testFleetContext(t);
  const hub = new LiveHub({ db: ctx.db, log: pino({ level: 'silent' }), config: { maxConnections: 10, heartbeatSeconds: 300, intervalMs: 100, maxBufferedBytes: 64 * 1024 } });
  t.after(() => hub.close());
  const server = createServer((req, res) => hub.open({ req, res, log: ctx.log } as unknown as ApiRequest));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((r) => server.close(r)));
  // A raw client that sends the request and never reads a byte.
  const sock = connect((server.address() as AddressInfo).port, '127.0.0.1');
  t.after(() => sock.destroy());
  await once(sock, 'connect');
  sock.pause();
  sock.write('GET /api/v1/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const closed = once(sock, 'close');
  for (let i = 0; i < 100 && hub.connections === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(hub.connections, 1);
  // ~60 KB per message, ten a second, until the kernel's buffers are full and ours passes 64 KiB.
  const ids = Array.from({ length: 1000 }, (_, i) => `satellite-with-a-long-name-${String(i).padStart(30, '0')}`);
  const started = Date.now();
  const feed = setInterval(() => hub.satellitesChanged(ids), 50);
  try {
    while (hub.dropped === 0 && Date.now() - started < 120_000) await new Promise((r) => setTimeout(r, 100));
  } finally {
    clearInterval(feed);
  }
  assert.equal(hub.dropped, 1, 'the stream was cut');
  assert.equal(hub.connections, 0);
  sock.resume();
  await closed;
});

test('live feed: a session stream ends when the session expires, with the reason', async (t) => {
  const ctx = await testFleetContext(t);
  const hub = new LiveHub({ db: ctx.db, log: pino({ level: 'silent' }), config: { maxConnections: 10, heartbeatSeconds: 300, intervalMs: 100, maxBufferedBytes: 1 << 20 } });
  t.after(() => hub.close());
  const sessions = new SessionStore({ ttlSeconds: 1 });
  const hash = sha256Hex(TEST_ADMIN_TOKEN);
  await durable(ctx.db, () => ctx.db.adminTokens.put(hash, { createdAt: new Date().toISOString(), source: 'test' }));
  const { cookie, session } = sessions.create(hash);
  const server = createServer((req, res) => hub.open({ req, res, log: ctx.log, sessions, caller: { actor: 'session', via: 'cookie', session, cookie } } as unknown as ApiRequest));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((r) => server.close(r)));
  const s = await openSse(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/live`);
  await s.next((e) => e.event === 'hello');
  const started = Date.now();
  const end = await s.next((e) => e.event === 'end', 5000, 'the end at expiry');
  assert.equal(JSON.parse(end.data).reason, 'session expired');
  assert.ok(Date.now() - started < 3000);
  await s.ended;
  assert.equal(hub.connections, 0);
});
