import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { topic } from '../../src/protocol/index.ts';
import { mosquittoAcl } from '../../src/groundcontrol/broker/mosquitto.ts';
import { addAndRegister, connectSatellite, eventually, startGroundControl, type Registered, type TestMqttClient } from '../helpers/groundcontrol.ts';
import { externalBrokerConfig, startMosquittoForGroundControl } from '../helpers/mosquitto.ts';
import { REPO_ROOT } from '../helpers/satellite.ts';

const GC_USER = 'groundcontrol';
const GC_PASSWORD = 'gc-broker-password-for-tests';
const GC = { username: GC_USER, password: GC_PASSWORD };
const at = () => new Date().toISOString();

test('the documented Mosquitto ACL is the one tested here', async () => {
  const doc = await readFile(join(REPO_ROOT, 'docs', 'groundcontrol.md'), 'utf8');
  assert.ok(doc.includes(mosquittoAcl(GC_USER)), 'docs/groundcontrol.md shows mosquittoAcl() verbatim');
});

test('external broker: Ground Control on a real mosquitto with the documented ACL, across a broker restart', async (t) => {
  // The operator's first password file, made with mosquitto's own tool; Ground Control then owns it.
  const mosq = await startMosquittoForGroundControl(t, GC);
  const gc = await startGroundControl(t, {
    config: {
      broker: externalBrokerConfig(mosq, GC),
    },
  });
  await gc.waitForLog(/"msg":"broker connected"/);

  // Ground Control confirms mosquitto's reload before it answers (broker-credentials.test.ts logs
  // in at the first attempt); retrying here covers the broker restart below.
  const connect = (reg: Registered, opts = {}) =>
    eventually(() => connectSatellite(t, mosq.url, reg, opts).catch(() => undefined), 5000, `${reg.satelliteId} logs in to mosquitto`);

  let a: Registered;
  let client: TestMqttClient;
  let inbox: TestMqttClient['inbox'];
  await t.test('register: the answer names mosquitto; the credentials work there', async () => {
    a = await addAndRegister(gc, 'ext-a');
    assert.equal(a.mqtt.url, mosq.url);
    assert.match(await readFile(mosq.passwordFile, 'utf8'), new RegExp(`^${a.satelliteId}:\\$7\\$`, 'm'));
    client = await connect(a, { reconnectPeriod: 300 });
    inbox = client.inbox;
    await client.subscribeAsync({ [topic(a.satelliteId, 'desired')]: { qos: 1 }, [topic(a.satelliteId, 'commands')]: { qos: 1 } });
  });

  await t.test('desired state and commands reach the satellite', async () => {
    await gc.api('POST', '/api/v1/groups', { name: 'ext', images: [{ repository: 'x/y', tags: ['1'] }] });
    await gc.api('POST', '/api/v1/assignments', { group: 'ext', satellite: a.satelliteId });
    await inbox.next((m) => m.doc?.state?.generation === 1, 5000, 'desired generation 1');
    const cmd = await gc.api('POST', `/api/v1/satellites/${a.satelliteId}/commands`, { name: 'sync-now' });
    await inbox.next((m) => m.doc?.id === cmd.body.command.id, 5000, 'the command');
  });

  await t.test('reports reach the fleet status', async () => {
    await client.publishAsync(topic(a.satelliteId, 'presence'), JSON.stringify({ type: 'presence', satelliteId: a.satelliteId, online: true, at: at() }), { qos: 1, retain: true });
    const state = {
      type: 'state', satelliteId: a.satelliteId, seq: 1, at: at(), version: '0.1.0', desiredGeneration: 1, appliedGeneration: 1,
      images: [], disk: { blobs: 0, bytes: 0 }, lastSync: null, upstream: { reachable: true, lastError: null },
    };
    await client.publishAsync(topic(a.satelliteId, 'state'), JSON.stringify(state), { qos: 1, retain: true });
    const sat = await eventually(async () => {
      const s = (await gc.api('GET', '/api/v1/status')).body.satellites.find((x: { id: string }) => x.id === a.satelliteId);
      return s.online && s.appliedGeneration === 1 ? s : undefined;
    }, 5000, 'status from mosquitto');
    assert.equal(sat.acknowledgedGeneration, 1);
  });

  await t.test("the ACL keeps a satellite to its own topics", async () => {
    const b = await addAndRegister(gc, 'ext-b');
    await gc.api('POST', '/api/v1/assignments', { group: 'ext', satellite: b.satelliteId });
    const bClient = await connect(b);
    // B may not read A's desired state nor write A's state.
    const bInbox = bClient.inbox;
    await bClient.subscribeAsync(topic(a.satelliteId, 'desired'), { qos: 1 }).catch(() => undefined);
    await bClient.publishAsync(topic(a.satelliteId, 'state'), JSON.stringify({ type: 'state', satelliteId: a.satelliteId, seq: 99 }), { qos: 1 });
    await sleep(500);
    assert.equal(bInbox.messages.length, 0, "nothing of A's reached B");
    const sat = (await gc.api('GET', '/api/v1/status')).body.satellites.find((x: { id: string }) => x.id === a.satelliteId);
    assert.equal(sat.state.seq, 1, 'the forged state never reached Ground Control');
    assert.equal(sat.errors.count, 0);
    await bClient.endAsync();
  });

  await t.test('broker restart: Ground Control reconnects; a change made after it reaches the satellite', async () => {
    const mark = gc.proc.nextLine;
    await mosq.stop();
    await gc.waitForLog(/"msg":"broker offline: reconnecting"/, 5000, mark);
    await mosq.restart();
    await gc.waitForLog(/"msg":"broker connected"/, 10_000, mark);
    await eventually(async () => client.connected, 10_000, 'satellite client reconnected');
    await gc.api('PUT', '/api/v1/groups/ext', { images: [{ repository: 'x/y', tags: ['2'] }] });
    const m = await inbox.next((x) => x.doc?.state?.generation === 2, 10_000, 'desired generation 2 after the restart');
    assert.deepEqual(m.doc.state.images, [{ repository: 'x/y', tags: ['2'] }]);
  });
});
