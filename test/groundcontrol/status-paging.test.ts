import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topic } from '../../src/protocol/index.ts';
import { addAndRegister, connectSatellite, eventually, startGroundControl, type GroundControl } from '../helpers/groundcontrol.ts';

const N = 10_000;
const SITES = 100;
const site = (i: number) => `site-${String(i % SITES).padStart(2, '0')}`;

/** Runs fn over 0..n-1 with `limit` in flight. */
async function pool(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < n) await fn(next++);
  }));
}

/** Every page of a filtered listing, following page.next; checks id order across pages. */
async function walk(gc: GroundControl, query: string): Promise<{ ids: string[]; pages: number; total: number | null }> {
  const ids: string[] = [];
  let after: string | null = null;
  let pages = 0;
  let total: number | null = null;
  do {
    const res: { status: number; body: any } = await gc.api('GET', `/api/v1/status?${query}${after ? `&after=${after}` : ''}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    ids.push(...res.body.satellites.map((s: { id: string }) => s.id));
    after = res.body.page.next;
    total = res.body.page.total;
    pages++;
  } while (after !== null);
  assert.deepEqual(ids, [...ids].sort(), 'id order across pages');
  assert.equal(new Set(ids).size, ids.length, 'no id twice');
  return { ids, pages, total };
}

async function medianMs(fn: () => Promise<unknown>, runs = 21): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)] as number;
}

test(`status API at ${N} satellites: paged, filtered by site, group and state; a page in < 50 ms`, async (t) => {
  const gc = await startGroundControl(t);
  const ids: string[] = new Array(N);
  await pool(N - 1, 16, async (i) => {
    const res = await gc.api('POST', '/api/v1/satellites', { name: `sat-${String(i).padStart(5, '0')}`, site: site(i) });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    ids[i] = res.body.satellite.id;
  });
  // The last one registered and online over MQTT, at site-07.
  const live = await addAndRegister(gc, 'live-one', 'site-07');
  ids[N - 1] = live.satelliteId;
  const client = await connectSatellite(t, gc.mqttUrl as string, live);
  await client.publishAsync(topic(live.satelliteId, 'presence'), JSON.stringify({ type: 'presence', satelliteId: live.satelliteId, online: true, at: new Date().toISOString() }), { qos: 1, retain: true });
  await gc.api('POST', '/api/v1/groups', { name: 'web', images: [{ repository: 'library/nginx', tags: ['1'] }] });
  assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'web', site: 'site-07' })).status, 201);
  const direct = ids[8] as string; // at site-08
  assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'web', satellite: direct })).status, 201);

  await t.test('the whole fleet in pages of 1000; default page 100 with the old row shape', async () => {
    const all = await walk(gc, 'limit=1000');
    assert.equal(all.ids.length, N);
    assert.equal(all.pages, 10);
    assert.equal(all.total, N);
    assert.deepEqual(all.ids, [...ids].sort());
    const first = await gc.api('GET', '/api/v1/status');
    assert.equal(first.body.satellites.length, 100);
    assert.deepEqual(first.body.page, { limit: 100, next: first.body.satellites[99].id, total: N });
    assert.equal(first.body.counts.satellites, N);
    // The old row shape, plus the additive failures and groups (issue 13).
    assert.deepEqual(Object.keys(first.body.satellites[0]).sort(), [
      'acknowledgedGeneration', 'appliedGeneration', 'desiredGeneration', 'errors', 'events', 'failures', 'groups', 'id', 'inSync', 'lastSeenAt', 'name', 'online', 'presenceAt', 'registered', 'site', 'state',
    ]);
  });

  await t.test('filters: site, group (direct and through the site), state, and combined', async () => {
    const atSite = await walk(gc, 'site=site-07&limit=30');
    assert.equal(atSite.ids.length, N / SITES + 1); // 100 created + live-one
    assert.equal(atSite.pages, 4);
    for (let i = 0; i < N - 1; i++) if (site(i) === 'site-07') assert.ok(atSite.ids.includes(ids[i] as string));
    const web = await walk(gc, 'group=web&limit=1000');
    assert.deepEqual(web.ids, [...atSite.ids, direct].sort());
    assert.equal(web.total, null, 'not known from the counters');
    const online = await eventually(async () => {
      const res = await gc.api('GET', '/api/v1/status?state=online');
      return res.body.satellites.length === 1 ? res.body : undefined;
    }, 10_000, 'the live satellite online');
    assert.equal(online.satellites[0].id, live.satelliteId);
    assert.equal(online.page.total, 1);
    assert.equal(online.counts.online, 1);
    assert.equal(online.counts.unknown, N - 1);
    assert.equal((await walk(gc, 'state=online&site=site-07')).ids.length, 1);
    assert.equal((await walk(gc, 'state=online&site=site-08')).ids.length, 0);
    assert.equal((await walk(gc, 'state=in-sync')).ids.length, 0);
    const outOfSync = await gc.api('GET', '/api/v1/status?state=out-of-sync&limit=1');
    // The N - 1 never seen are not syncing; the live one is (it has not applied its state).
    assert.equal(outOfSync.body.page.total, 1);
    const list = await gc.api('GET', `/api/v1/satellites?group=web&limit=5`);
    assert.equal(list.body.satellites.length, 5);
    assert.deepEqual(list.body.satellites[0].groups, ['web']);
  });

  await t.test('bad filters are a 400 naming the key', async () => {
    for (const q of ['state=bogus', 'limit=0', 'limit=x', 'site=Not_A_Slug', 'after=..', 'sort=colour', 'dir=up', 'offset=-1']) {
      const res = await gc.api('GET', `/api/v1/status?${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.body.error.code, 'QUERY_INVALID', q);
    }
  });

  await t.test('sorted by a column: pages of the whole fleet in that order (the console sorts across pages)', async () => {
    // Names sat-00000 … sat-09998 and live-one: descending, sat-09998 leads, sat-09898 opens page 2.
    const first = await gc.api('GET', '/api/v1/status?sort=name&dir=desc&limit=100');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.satellites[0].id, ids[N - 2]);
    assert.equal(first.body.page.total, N);
    assert.equal(first.body.page.nextOffset, 100);
    const second = await gc.api('GET', '/api/v1/status?sort=name&dir=desc&limit=100&offset=100');
    assert.equal(second.body.satellites[0].id, ids[N - 2 - 100]);
    const online = await gc.api('GET', '/api/v1/status?sort=presence&dir=desc&limit=1');
    assert.equal(online.body.satellites[0].id, live.satelliteId, 'the one online satellite first, out of 10,000');
    const ms = await medianMs(() => gc.api('GET', '/api/v1/status?sort=disk&dir=desc&limit=100'), 7);
    t.diagnostic(`median ms: sorted page over ${N} satellites ${ms.toFixed(1)}`);
    assert.ok(ms < 2000, `sorted page: ${ms.toFixed(1)} ms`);
  });

  await t.test('a page costs < 50 ms at 10,000 satellites (median of 21, from the client)', async () => {
    const page = await medianMs(() => gc.api('GET', '/api/v1/status?limit=100'));
    const later = await medianMs(() => gc.api('GET', `/api/v1/status?limit=100&after=${ids[5000]}`));
    const bySite = await medianMs(() => gc.api('GET', '/api/v1/status?site=site-42'));
    const byState = await medianMs(() => gc.api('GET', '/api/v1/status?state=unknown&limit=100'));
    t.diagnostic(`median ms: first page ${page.toFixed(1)}, a later page ${later.toFixed(1)}, by site ${bySite.toFixed(1)}, by state ${byState.toFixed(1)}`);
    for (const [what, ms] of Object.entries({ page, later, bySite, byState })) assert.ok(ms < 50, `${what}: ${ms.toFixed(1)} ms`);
  });
});
