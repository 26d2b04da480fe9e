import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { topic } from '../../src/protocol/index.ts';
import { mayPublish, maySubscribe } from '../../src/groundcontrol/broker/authorizer.ts';
import { addAndRegister, connectMqtt, connectSatellite, eventually, startGroundControl } from '../helpers/groundcontrol.ts';

const at = () => new Date().toISOString();
const stateOf = (id: string, seq: number) => ({
  type: 'state', satelliteId: id, seq, at: at(), version: '0.1.0', desiredGeneration: null, appliedGeneration: null,
  images: [], disk: { blobs: 0, bytes: 0 }, lastSync: null, upstream: { reachable: null, lastError: null },
});

test('embedded broker authorizer: satellites use only their own topics', async (t) => {
  const gc = await startGroundControl(t);
  const url = gc.mqttUrl as string;
  const a = await addAndRegister(gc, 'sat-a');
  const b = await addAndRegister(gc, 'sat-b');
  await gc.api('POST', '/api/v1/groups', { name: 'g', images: [{ repository: 'x/y', tags: ['1'] }] });
  await gc.api('POST', '/api/v1/assignments', { group: 'g', satellite: a.satelliteId });

  await t.test('subscriptions: own downstream topics granted, anything else refused (SUBACK 0x80)', async () => {
    const client = await connectSatellite(t, url, a, { clean: true });
    // MQTT.js turns a SUBACK failure (0x80) into an error that carries the packet.
    const granted = async (filter: string) => {
      try {
        return (await client.subscribeAsync(filter, { qos: 1 }))[0]?.qos;
      } catch (err) {
        return (err as { packet?: { granted?: number[] } }).packet?.granted?.[0];
      }
    };
    assert.equal(await granted(topic(a.satelliteId, 'desired')), 1);
    assert.equal(await granted(topic(a.satelliteId, 'commands')), 1);
    assert.equal(await granted(topic(b.satelliteId, 'desired')), 128);
    assert.equal(await granted(topic(b.satelliteId, 'commands')), 128);
    assert.equal(await granted(topic(a.satelliteId, 'state')), 128, 'not even its own upstream');
    assert.equal(await granted('hs/v1/satellites/+/desired'), 128);
    assert.equal(await granted('#'), 128);
    client.end(true);
  });

  await t.test("publishing on B's state topic or on its own desired topic is refused", async () => {
    const client = await connectSatellite(t, url, a, { clean: true });
    client.on('error', () => {});
    client.publish(topic(b.satelliteId, 'state'), JSON.stringify(stateOf(b.satelliteId, 1)), { qos: 1 });
    await sleep(300);
    const forged = { type: 'desired', satelliteId: a.satelliteId, issuedAt: at(), state: { generation: 99, upstream: { url: 'http://127.0.0.1:1' }, images: [] } };
    const again = client.connected ? client : await connectSatellite(t, url, a, { clean: true });
    again.on('error', () => {});
    again.publish(topic(a.satelliteId, 'desired'), JSON.stringify(forged), { qos: 1, retain: true });
    await sleep(300);
    // Nothing reached Ground Control for B, and A's retained desired state is still Ground Control's.
    const status = await gc.api('GET', '/api/v1/status');
    assert.equal(status.body.satellites.find((s: { id: string }) => s.id === b.satelliteId).state, null);
    const reader = await connectSatellite(t, url, a, { clean: true });
    const inbox = reader.inbox;
    await reader.subscribeAsync(topic(a.satelliteId, 'desired'), { qos: 1 });
    const m = await inbox.next(() => true, 5000, 'retained desired');
    assert.equal(m.doc.state.generation, 1);
    assert.match(gc.logs(), /"msg":"mqtt publish refused"/);
    // Its own upstream topic works (positive control).
    reader.publish(topic(a.satelliteId, 'state'), JSON.stringify(stateOf(a.satelliteId, 1)), { qos: 1 });
    await eventually(async () => (await gc.api('GET', '/api/v1/status')).body.satellites.find((s: { id: string }) => s.id === a.satelliteId).state, 5000, 'own state recorded');
  });

  await t.test('wrong password, unknown user and no credentials are refused', async () => {
    await assert.rejects(connectSatellite(t, url, { ...a, mqtt: { ...a.mqtt, password: 'wrong-password' } }), /Bad username or password/);
    await assert.rejects(connectMqtt(t, url, { clientId: 'ghost-123456', username: 'ghost-123456', password: 'x' }), /Bad username or password/);
    await assert.rejects(connectMqtt(t, url, { clientId: 'anon' }), /Bad username or password/);
    // Ground Control's own user is not reachable with a guessed password.
    await assert.rejects(connectMqtt(t, url, { clientId: 'groundcontrol-x', username: 'groundcontrol', password: 'groundcontrol' }), /Bad username or password/);
  });
});

test('embedded broker: oversized packets are cut at the socket; deleted satellites are disconnected', async (t) => {
  const gc = await startGroundControl(t);
  const url = gc.mqttUrl as string;
  const a = await addAndRegister(gc, 'big-talker');

  await t.test('a packet over twice the payload limit drops the connection; Ground Control carries on', async () => {
    const client = await connectSatellite(t, url, a, { clean: true });
    client.on('error', () => {});
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish(topic(a.satelliteId, 'state'), Buffer.alloc(3 * 1024 * 1024, 0x20), { qos: 1 });
    await closed;
    // Counted in the broker's summary line (every broker.limits.logIntervalSeconds, default 10 s).
    await gc.waitForLog(/"reasons":\{"PACKET_TOO_LARGE":1\}.*"msg":"mqtt connections refused or dropped"/, 15_000);
    assert.equal((await gc.api('GET', '/api/v1/healthz', undefined, null)).status, 200);
    assert.ok((await connectSatellite(t, url, a, { clean: true })).connected, 'the satellite can come back');
  });

  await t.test('deleting a satellite closes its session and refuses its login', async () => {
    const client = await connectSatellite(t, url, a, { clean: true });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    assert.equal((await gc.api('DELETE', `/api/v1/satellites/${a.satelliteId}`)).status, 200);
    await closed;
    await assert.rejects(connectSatellite(t, url, a, { clean: true }), /Bad username or password/);
  });
});

test('authorizer rules (unit)', () => {
  const sat = { kind: 'satellite', id: 'sat-1' } as const;
  assert.equal(mayPublish(sat, 'hs/v1/satellites/sat-1/state'), true);
  assert.equal(mayPublish(sat, 'hs/v1/satellites/sat-1/desired'), false);
  assert.equal(mayPublish(sat, 'hs/v1/satellites/sat-2/state'), false);
  assert.equal(mayPublish(sat, 'elsewhere'), false);
  assert.equal(maySubscribe(sat, 'hs/v1/satellites/sat-1/commands'), true);
  assert.equal(maySubscribe(sat, 'hs/v1/satellites/+/commands'), false);
  assert.equal(maySubscribe({ kind: 'groundcontrol' }, '#'), true);
});
