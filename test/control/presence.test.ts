import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { defer } from '../helpers/cleanup.ts';
import { spawnPeer, waitForLine } from '../helpers/process.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { startBroker } from './broker.ts';
import { assertAllValid, connectGc, field, openSatellite, type Received, type TestGc } from './helpers.ts';

const ID = 'sat-presence';

/** The retained presence as a newcomer sees it (a fresh subscriber gets the retained message). */
async function retainedPresence(t: Parameters<typeof connectGc>[0], url: string): Promise<Received> {
  const fresh = await connectGc(t, url);
  const m = await fresh.waitFor('retained presence', (r) => r.channel === 'presence' && r.satelliteId === ID);
  await fresh.close();
  return m;
}

const presenceAfter = (gc: TestGc, from: number, online: boolean) => (m: Received) =>
  gc.received.indexOf(m) >= from && m.channel === 'presence' && m.satelliteId === ID && field(m, 'online') === online;

test('presence: retained online on connect, last will offline when killed, offline on graceful close', async (t) => {
  const broker = await startBroker(t);
  const gc = await connectGc(t, broker.url);
  const dataDir = await makeTempDir(t);
  const config = { satelliteId: ID, mqtt: { url: broker.url }, keepaliveSeconds: 5 };

  // In its own process, so it can die without a DISCONNECT.
  const proc = spawnPeer(process.execPath, [join(import.meta.dirname, 'satellite-main.ts'), dataDir, JSON.stringify(config)], { name: 'satellite-main' });
  defer(t, () => proc.stop());
  await waitForLine(proc, /control started/, 15_000);
  const online = await gc.waitFor('online', presenceAfter(gc, 0, true));
  assert.equal(field(online, 'version'), '0.1.0-test');
  const retainedOnline = await retainedPresence(t, broker.url);
  assert.equal(retainedOnline.retain, true);
  assert.equal(field(retainedOnline, 'online'), true);

  const mark = gc.received.length;
  await proc.kill('SIGKILL');
  const will = await gc.waitFor('last will', presenceAfter(gc, mark, false), 10_000);
  assert.equal(field(will, 'satelliteId'), ID);
  const retainedWill = await retainedPresence(t, broker.url);
  assert.equal(retainedWill.retain, true);
  assert.equal(field(retainedWill, 'online'), false);

  // Back (in this process), then a graceful close: offline published explicitly, retained.
  const sat = await openSatellite(t, { dataDir, config });
  const mark2 = gc.received.length;
  await gc.waitFor('online again', presenceAfter(gc, mark2, true));
  assert.equal(field(await retainedPresence(t, broker.url), 'online'), true);
  const mark3 = gc.received.length;
  await sat.close();
  await gc.waitFor('offline on close', presenceAfter(gc, mark3, false));
  const retainedOffline = await retainedPresence(t, broker.url);
  assert.equal(field(retainedOffline, 'online'), false);
  assert.ok(Date.parse(field<string>(retainedOffline, 'at')) >= Date.parse(field<string>(will, 'at')));
  assert.equal(broker.logs().includes('satellite-sat-presence'), true);
  assertAllValid(gc);
});

test('graceful SIGTERM of the satellite process publishes offline, flushes, and sends DISCONNECT (no will)', async (t) => {
  const broker = await startBroker(t);
  const gc = await connectGc(t, broker.url);
  const dataDir = await makeTempDir(t);
  const config = { satelliteId: ID, mqtt: { url: broker.url } };
  const proc = spawnPeer(process.execPath, [join(import.meta.dirname, 'satellite-main.ts'), dataDir, JSON.stringify(config)], { name: 'satellite-main' });
  defer(t, () => proc.stop());
  await waitForLine(proc, /control started/, 15_000);
  await gc.waitFor('online', presenceAfter(gc, 0, true));
  const mark = gc.received.length;
  const exit = await proc.stop(10_000);
  assert.deepEqual(exit, { code: 0, signal: null }, proc.describe());
  await gc.waitFor('offline', presenceAfter(gc, mark, false));
  // mosquitto logs "disconnected." for a DISCONNECT and "closed its connection" / "disconnected, not authorised" otherwise.
  assert.match(broker.logs(), /Client satellite-sat-presence disconnected\./);
  assertAllValid(gc);
});
