import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { topic } from '../../src/protocol/index.ts';
import { mosquittoFleetSettings } from '../../src/groundcontrol/broker/mosquitto.ts';
import type { Teardown } from '../helpers/cleanup.ts';
import { addAndRegister, connectSatellite, startGroundControl, type GroundControl, type Registered, type TestMqttClient } from '../helpers/groundcontrol.ts';
import { externalBrokerConfig, startMosquittoForGroundControl } from '../helpers/mosquitto.ts';
import { REPO_ROOT } from '../helpers/satellite.ts';

const GC_USER = 'groundcontrol';
const GC_PASSWORD = 'gc-broker-password-for-credentials-test';
const GC = { username: GC_USER, password: GC_PASSWORD };
const CONCURRENT = 12;

/**
 * What every broker must do with the credentials Ground Control issues, checked through the real
 * process: a satellite logs in on its first attempt right after registering (no retry), uses only
 * its own topics, loses its session and its login when its password is rotated or it is deleted.
 */
async function credentialsLifecycle(t: Teardown & { test: (name: string, fn: () => Promise<void>) => Promise<unknown> }, gc: GroundControl, url: string): Promise<void> {
  let regs: Registered[] = [];
  let clients: TestMqttClient[] = [];
  await t.test(`${CONCURRENT} concurrent registrations: each satellite logs in at its first attempt`, async () => {
    regs = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => addAndRegister(gc, `cred-${i}`)));
    // connectMqtt never retries (reconnectPeriod 0): a refused login fails the test.
    clients = await Promise.all(regs.map((r) => connectSatellite(t, url, r)));
    for (const [i, c] of clients.entries()) {
      const granted = await c.subscribeAsync(topic(regs[i]!.satelliteId, 'desired'), { qos: 1 });
      assert.equal(granted[0]?.qos, 1, 'its own desired topic is granted');
    }
  });

  await t.test("a satellite cannot read or write another satellite's topics", async () => {
    const [a, b] = regs as [Registered, Registered];
    const [, bClient] = clients as [TestMqttClient, TestMqttClient];
    // The embedded broker refuses the subscription (SUBACK 0x80); mosquitto's acl_file grants it
    // but delivers nothing on it (checked on delivery, below).
    await bClient.subscribeAsync(topic(a.satelliteId, 'desired'), { qos: 1 }).catch(() => undefined);
    await gc.api('POST', '/api/v1/groups', { name: 'cred', images: [{ repository: 'x/y', tags: ['1'] }] });
    await gc.api('POST', '/api/v1/assignments', { group: 'cred', satellite: a.satelliteId });
    await clients[0]!.inbox.next((m) => m.doc?.state?.generation === 1, 5000, "A's desired state");
    // Another satellite forges A's state: it never reaches Ground Control. (Not awaited: the
    // embedded broker closes the connection of a refused publish, mosquitto acknowledges it.)
    clients[3]!.publish(topic(a.satelliteId, 'state'), JSON.stringify({ type: 'state', satelliteId: a.satelliteId, seq: 99 }), { qos: 1 });
    await sleep(500);
    assert.equal(bClient.inbox.messages.filter((m) => m.topic.includes(a.satelliteId)).length, 0, "nothing of A's reached B");
    const status = await gc.api('GET', '/api/v1/status');
    const row = status.body.satellites.find((s: { id: string }) => s.id === a.satelliteId);
    assert.equal(row.state, null, 'no state recorded for A');
    assert.equal(row.errors.count, 0);
    assert.ok(b.satelliteId);
  });

  await t.test('rotation: the old session is closed and the old password refused; the new one works at once', async () => {
    const a = regs[0]!;
    const token = await gc.api('POST', `/api/v1/satellites/${a.satelliteId}/tokens`, {});
    const closed = new Promise<void>((resolve) => clients[0]!.once('close', () => resolve()));
    const again = await gc.api('POST', '/api/v1/register', { token: token.body.token }, null);
    assert.equal(again.status, 200);
    await Promise.race([closed, sleep(5000).then(() => assert.fail('the session of the rotated password was not closed'))]);
    await assert.rejects(connectSatellite(t, url, a), /Bad username or password|Not authorized|closed before CONNACK/);
    assert.ok((await connectSatellite(t, url, again.body)).connected);
  });

  await t.test('deletion: the session is closed and the satellite can no longer log in', async () => {
    const b = regs[1]!;
    const closed = new Promise<void>((resolve) => clients[1]!.once('close', () => resolve()));
    const del = await gc.api('DELETE', `/api/v1/satellites/${b.satelliteId}`);
    assert.equal(del.status, 200);
    await Promise.race([closed, sleep(5000).then(() => assert.fail('the deleted satellite was not disconnected'))]);
    await assert.rejects(connectSatellite(t, url, b), /Bad username or password|Not authorized|closed before CONNACK/);
    // The others are untouched.
    assert.ok(clients[2]!.connected);
  });
}

test('embedded broker: credentials take effect at once (authenticated from LMDB)', async (t) => {
  const gc = await startGroundControl(t);
  await credentialsLifecycle(t, gc, gc.mqttUrl as string);
});

test('mosquitto with the password file: batched writes and reloads, each confirmed before the answer', async (t) => {
  const mosq = await startMosquittoForGroundControl(t, GC);
  const gc = await startGroundControl(t, {
    config: {
      log: { level: 'debug' },
      broker: externalBrokerConfig(mosq, GC),
    },
  });
  await gc.waitForLog(/"msg":"broker connected"/);
  await credentialsLifecycle(t, gc, mosq.url);

  await t.test('the registrations shared writes: fewer file writes and reloads than changes', async () => {
    const writes = gc.proc.output().split('\n').filter((l) => l.includes('"msg":"mosquitto password file written"'));
    // One on start, then at most one per change (12 registrations, a rotation, a deletion).
    assert.ok(writes.length >= 2, `some writes logged: ${writes.length}`);
    assert.ok(writes.length < 1 + CONCURRENT + 2, `${writes.length} writes for ${CONCURRENT + 2} changes`);
    const file = await readFile(mosq.passwordFile, 'utf8');
    assert.equal(file.split('\n').filter((l) => /^cred-/.test(l)).length, CONCURRENT - 1, 'the deleted satellite is gone from the file');
  });
});

test('the documented mosquitto settings for large fleets are the ones the tests and bench run', async () => {
  const doc = await readFile(join(REPO_ROOT, 'docs', 'groundcontrol.md'), 'utf8');
  assert.ok(doc.includes(mosquittoFleetSettings()), 'docs/groundcontrol.md shows mosquittoFleetSettings() verbatim');
});
