import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topic } from '../../src/protocol/index.ts';
import { VERSION } from '../../src/version.ts';
import { addAndRegister, connectSatellite, eventually, startGroundControl } from '../helpers/groundcontrol.ts';

// The API behind the console's management pages: reach previews, commands to a site or group,
// sorted status pages, the token answer's version. Real Ground Control, a satellite over MQTT.
test('management API: reach of a group change, commands to a satellite, site and group, sorted status pages', async (t) => {
  const gc = await startGroundControl(t);
  const id: Record<string, string> = {};
  for (const [name, site] of [['a1', 'alpha'], ['a2', 'alpha'], ['a3', 'alpha'], ['loose', null]] as const) {
    const res = await gc.api('POST', '/api/v1/satellites', { name, ...(site ? { site } : {}) });
    assert.equal(res.status, 201);
    id[name] = res.body.satellite.id;
  }
  const b1 = await addAndRegister(gc, 'b1', 'beta');
  id.b1 = b1.satelliteId;
  assert.equal((await gc.api('PUT', '/api/v1/groups/web', { images: [{ repository: 'library/nginx', tags: ['1'] }] })).status, 201);
  const reach = async (q = '') => {
    const res = await gc.api('GET', `/api/v1/groups/web/reach${q}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as { count: number; first: Array<{ id: string; name: string }> };
  };

  await t.test('reach: who gets the group, and who an assignment would change', async () => {
    assert.deepEqual(await reach(), { count: 0, first: [] });
    assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'web', satellite: id.a1 })).status, 201);
    assert.deepEqual((await reach()).first.map((s) => s.name), ['a1']);
    // Assigning site alpha gives the group to a2 and a3; a1 has it already.
    const site = await reach('?site=alpha');
    assert.equal(site.count, 2);
    assert.deepEqual(site.first.map((s) => s.name).sort(), ['a2', 'a3']);
    assert.deepEqual(await reach(`?satellite=${id.a1}`), { count: 1, first: [{ id: id.a1, name: 'a1' }] }, 'unassigning a1 changes a1');
    assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'web', site: 'alpha' })).status, 201);
    assert.equal((await reach()).count, 3);
    assert.equal((await reach(`?satellite=${id.a1}`)).count, 0, 'a1 keeps the group through its site');
    assert.equal((await reach('?site=nowhere')).count, 0);
    const bad = await gc.api('GET', `/api/v1/groups/web/reach?site=alpha&satellite=${id.a1}`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'QUERY_INVALID');
    assert.equal((await gc.api('GET', `/api/v1/groups/web/reach?satellite=nobody-000000`)).body.error.code, 'SATELLITE_UNKNOWN');
  });

  await t.test('commands: to a site (queued: offline), to one online satellite (answered), to a group; audited once', async () => {
    const toSite = await gc.api('POST', '/api/v1/commands', { name: 'gc', site: 'alpha' });
    assert.equal(toSite.status, 202, JSON.stringify(toSite.body));
    assert.equal(toSite.body.count, 3);
    assert.deepEqual(toSite.body.commands.map((c: { satelliteId: string }) => c.satelliteId).sort(), [id.a1, id.a2, id.a3].sort());
    assert.deepEqual(toSite.body.commands.map((c: { online: unknown }) => c.online), [null, null, null], 'never seen: queued');
    const cid = toSite.body.commands[0].id;
    assert.equal((await gc.api('GET', `/api/v1/satellites/${toSite.body.commands[0].satelliteId}/commands/${cid}`)).body.command.name, 'gc');

    const client = await connectSatellite(t, gc.mqttUrl as string, b1);
    await client.subscribeAsync(topic(b1.satelliteId, 'commands'), { qos: 1 });
    await client.publishAsync(topic(b1.satelliteId, 'presence'), JSON.stringify({ type: 'presence', satelliteId: b1.satelliteId, online: true, at: new Date().toISOString() }), { qos: 1, retain: true });
    await eventually(async () => (await gc.api('GET', '/api/v1/status?state=online')).body.satellites.length === 1, 5000, 'b1 online');
    const one = await gc.api('POST', '/api/v1/commands', { name: 'report', satellite: b1.satelliteId });
    assert.equal(one.status, 202);
    assert.equal(one.body.commands[0].online, true);
    const sent = await client.inbox.next((m) => m.doc.id === one.body.commands[0].id, 5000, 'the command');
    await client.publishAsync(
      topic(b1.satelliteId, 'results'),
      JSON.stringify({ type: 'result', satelliteId: b1.satelliteId, commandId: sent.doc.id, name: 'report', ok: true, duplicate: false, result: { reported: true }, at: new Date().toISOString() }),
      { qos: 1 },
    );
    const answered = await eventually(async () => {
      const c = (await gc.api('GET', `/api/v1/satellites/${b1.satelliteId}/commands/${sent.doc.id}`)).body.command;
      return c.status === 'ok' ? c : undefined;
    }, 5000, 'the result');
    assert.deepEqual(answered.result, { reported: true });

    assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'web', site: 'beta' })).status, 201);
    const toGroup = await gc.api('POST', '/api/v1/commands', { name: 'sync-now', group: 'web' });
    assert.equal(toGroup.body.count, 4);
    for (const [body, code, status] of [
      [{ name: 'gc', group: 'nope' }, 'GROUP_UNKNOWN', 404],
      [{ name: 'gc', satellite: 'nobody-000000' }, 'SATELLITE_UNKNOWN', 404],
      [{ name: 'gc', site: 'alpha', group: 'web' }, 'BODY_INVALID', 400],
      [{ name: 'defrag', site: 'alpha' }, 'BODY_INVALID', 400],
    ] as const) {
      const res = await gc.api('POST', '/api/v1/commands', body);
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.error.code, code);
    }
    const audit = (await gc.api('GET', '/api/v1/events?kind=audit&limit=50')).body.events as Array<{ message: string; actor: string }>;
    const line = audit.find((e) => e.message === 'command gc sent to site alpha (3 satellite(s))');
    assert.ok(line, JSON.stringify(audit.map((e) => e.message)));
    assert.match(line.actor, /admin token [0-9a-f]{12}/);
  });

  await t.test('status sorted by a column pages across every satellite (offset), not within a page', async () => {
    const all: string[] = [];
    let offset: number | null = 0;
    while (offset !== null) {
      const res: { status: number; body: any } = await gc.api('GET', `/api/v1/status?sort=id&dir=desc&limit=2&offset=${offset}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.page.total, 5);
      all.push(...res.body.satellites.map((s: { id: string }) => s.id));
      offset = res.body.page.nextOffset;
    }
    assert.deepEqual(all, Object.values(id).sort().reverse());
    // By presence, online first when descending: b1 (the only one seen) heads the first page.
    const byPresence = await gc.api('GET', '/api/v1/status?sort=presence&dir=desc&limit=1');
    assert.equal(byPresence.body.satellites[0].id, b1.satelliteId);
    const bySite = await gc.api('GET', '/api/v1/status?sort=site&limit=5&site=alpha');
    assert.equal(bySite.body.satellites.length, 3);
    const mixed = await gc.api('GET', `/api/v1/status?sort=site&after=${id.a1}`);
    assert.equal(mixed.status, 400);
    assert.equal(mixed.body.error.code, 'QUERY_INVALID');
    assert.equal((await gc.api('GET', '/api/v1/status?sort=colour')).body.error.code, 'QUERY_INVALID');
    // The syncing count: b1 (seen, not applied) only; the three never seen are not syncing.
    const counts = (await gc.api('GET', '/api/v1/status')).body.counts;
    assert.equal(counts.unknown, 4);
    assert.equal(counts.outOfSync, 1);
  });

  await t.test('a new registration token names the release for the install line', async () => {
    const res = await gc.api('POST', '/api/v1/tokens', { site: 'gamma' });
    assert.equal(res.status, 201);
    assert.equal(res.body.version, VERSION);
    assert.match(res.body.token, /\S{20,}/);
  });
});
