import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_PAYLOAD_BYTES, topic } from '../../src/protocol/index.ts';
import { addAndRegister, connectSatellite, eventually, startGroundControl } from '../helpers/groundcontrol.ts';

const at = () => new Date().toISOString();
const stateOf = (id: string, seq: number, desired: number | null, applied: number | null) => ({
  type: 'state', satelliteId: id, seq, at: at(), version: '0.1.0', desiredGeneration: desired, appliedGeneration: applied,
  images: [
    { repository: 'x/y', reference: '1', status: 'ok', digest: `sha256:${'a'.repeat(64)}` },
    { repository: 'x/z', reference: '2', status: 'failed', code: 'MANIFEST_UNKNOWN', reason: 'not found' },
  ],
  disk: { blobs: 3, bytes: 1234 },
  lastSync: { result: 'partial', finishedAt: at(), bytesFromUpstream: 1234, errors: 1 },
  upstream: { reachable: true, lastError: null },
});

test('reports: presence, state, events reach the fleet status; bad messages are rejected and counted', async (t) => {
  const gc = await startGroundControl(t);
  const a = await addAndRegister(gc, 'reporter');
  const b = await addAndRegister(gc, 'bystander');
  await gc.api('POST', '/api/v1/groups', { name: 'g', images: [{ repository: 'x/y', tags: ['1'] }] });
  await gc.api('POST', '/api/v1/assignments', { group: 'g', satellite: a.satelliteId });
  const row = async (id = a.satelliteId) => {
    const res = await gc.api('GET', '/api/v1/status');
    return { fleet: res.body, sat: res.body.satellites.find((s: { id: string }) => s.id === id) };
  };
  const presence = (online: boolean) => JSON.stringify({ type: 'presence', satelliteId: a.satelliteId, online, at: at(), version: '0.1.0' });
  const client = await connectSatellite(t, gc.mqttUrl as string, a, {
    will: { topic: topic(a.satelliteId, 'presence'), payload: Buffer.from(presence(false)), qos: 1, retain: true },
  });

  await t.test('presence online, then a state report with acknowledged and applied generations', async () => {
    await client.publishAsync(topic(a.satelliteId, 'presence'), presence(true), { qos: 1, retain: true });
    await client.publishAsync(topic(a.satelliteId, 'state'), JSON.stringify(stateOf(a.satelliteId, 5, 1, 1)), { qos: 1, retain: true });
    const { sat, fleet } = await eventually(async () => {
      const r = await row();
      return r.sat.online === true && r.sat.state ? r : undefined;
    }, 5000, 'online + state');
    assert.equal(sat.desiredGeneration, 1);
    assert.equal(sat.acknowledgedGeneration, 1);
    assert.equal(sat.appliedGeneration, 1);
    assert.equal(sat.inSync, true);
    assert.deepEqual(sat.state.images, { ok: 1, pending: 0, failed: 1 });
    assert.deepEqual(sat.state.disk, { blobs: 3, bytes: 1234 });
    assert.equal(fleet.counts.online, 1);
    const shown = await gc.api('GET', `/api/v1/satellites/${a.satelliteId}`);
    assert.equal(shown.body.satellite.status.state.images[1].code, 'MANIFEST_UNKNOWN');
  });

  await t.test('an older seq is ignored', async () => {
    await client.publishAsync(topic(a.satelliteId, 'state'), JSON.stringify(stateOf(a.satelliteId, 3, 0, 0)), { qos: 1 });
    await client.publishAsync(topic(a.satelliteId, 'events'), JSON.stringify({ type: 'event', satelliteId: a.satelliteId, level: 'warn', code: 'SYNC_SLOW', message: 'slow', at: at() }), { qos: 1 });
    const { sat } = await eventually(async () => {
      const r = await row();
      return r.sat.events.count === 1 ? r : undefined;
    }, 5000, 'event recorded');
    assert.equal(sat.events.last.code, 'SYNC_SLOW');
    assert.equal(sat.state.seq, 5, 'seq 3 came after seq 5 and lost');
    assert.equal(sat.appliedGeneration, 1);
  });

  await t.test('malformed, oversized, schema-invalid and wrong-satellite messages are rejected; Ground Control carries on', async () => {
    const t1 = topic(a.satelliteId, 'state');
    await client.publishAsync(t1, '{not json', { qos: 1 });
    await client.publishAsync(t1, Buffer.alloc(MAX_PAYLOAD_BYTES + 10, 0x20), { qos: 1 });
    await client.publishAsync(t1, JSON.stringify({ ...stateOf(a.satelliteId, 6, 1, 1), extra: true }), { qos: 1 });
    await client.publishAsync(topic(a.satelliteId, 'events'), JSON.stringify({ type: 'event', satelliteId: b.satelliteId, level: 'error', code: 'X', message: 'forged', at: at() }), { qos: 1 });
    const { sat, fleet } = await eventually(async () => {
      const r = await row();
      return r.sat.errors.count === 4 ? r : undefined;
    }, 5000, '4 rejected messages');
    assert.equal(fleet.rejected.count, 4);
    assert.equal(sat.errors.last.code, 'MESSAGE_INVALID');
    assert.match(sat.errors.last.message, /names satellite .* on .*'s topic/);
    assert.equal(sat.errors.last.topic, topic(a.satelliteId, 'events'));
    const logs = gc.logs();
    assert.match(logs, /"reason":"payload on [^"]+ is not JSON"/);
    assert.match(logs, /"reason":"payload of 1048586 bytes exceeds 1048576"/);
    assert.match(logs, /unknown key \\"extra\\"/);
    assert.equal((await row(b.satelliteId)).sat.events.count, 0, 'the forged event did not count for B');
    // Still working: the next valid report is recorded.
    await client.publishAsync(t1, JSON.stringify(stateOf(a.satelliteId, 7, 1, 1)), { qos: 1 });
    await eventually(async () => (await row()).sat.state.seq === 7, 5000, 'seq 7 recorded');
    assert.equal((await gc.api('GET', '/api/v1/healthz', undefined, null)).status, 200);
  });

  await t.test('the last will marks it offline', async () => {
    client.stream.destroy(); // no DISCONNECT: the broker publishes the will
    const { sat, fleet } = await eventually(async () => {
      const r = await row();
      return r.sat.online === false ? r : undefined;
    }, 5000, 'offline by last will');
    assert.equal(fleet.counts.offline, 1);
    assert.ok(sat.presenceAt);
  });
});
