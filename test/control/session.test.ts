import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeTempDir } from '../helpers/tmp.ts';
import { startBroker } from './broker.ts';
import { assertAllValid, connectGc, emptyDesired, field, openSatellite, until, type Received, type TestGc } from './helpers.ts';

const resultsFor = (gc: TestGc, id: string, commandId: string): Received[] =>
  gc.from(id, 'results').filter((m) => field(m, 'commandId') === commandId);

test('persistent session: what was published while the satellite was down arrives after its restart; a command id runs once', async (t) => {
  const ID = 'sat-session';
  const broker = await startBroker(t);
  const gc = await connectGc(t, broker.url);
  await gc.publishDesired(ID, emptyDesired(1));
  const dataDir = await makeTempDir(t);
  const config = { satelliteId: ID, mqtt: { url: broker.url } };

  const first = await openSatellite(t, { dataDir, config });
  await until('generation 1 applied', () => first.sync.status().appliedGeneration === 1);
  await first.close();

  // The satellite is offline: a command, a new desired state, another command.
  await gc.publishCommand(ID, 'cmd-sync-1', 'sync-now');
  await gc.publishDesired(ID, emptyDesired(2));
  await gc.publishCommand(ID, 'cmd-report-1', 'report');

  // Restart: new store, engine and control on the same data dir.
  const second = await openSatellite(t, { dataDir, config });
  const sync1 = await gc.waitFor('sync-now result', (m) => m.channel === 'results' && field(m, 'commandId') === 'cmd-sync-1');
  const report1 = await gc.waitFor('report result', (m) => m.channel === 'results' && field(m, 'commandId') === 'cmd-report-1');
  assert.equal(field(sync1, 'ok'), true);
  assert.equal(field(sync1, 'duplicate'), false);
  assert.equal(field(sync1, 'name'), 'sync-now');
  const run = field<{ result: string; finishedAt: string }>(sync1, 'result');
  assert.equal(run.result, 'ok');
  assert.equal(field(report1, 'ok'), true);
  const reportedSeq = field<{ seq: number }>(report1, 'result').seq;
  await gc.waitFor('the report the command asked for', (m) => m.channel === 'state' && field(m, 'seq') === reportedSeq);
  await until('generation 2 applied', () => second.sync.status().appliedGeneration === 2);
  await gc.waitFor('report acknowledging generation 2', (m) => m.channel === 'state' && field(m, 'desiredGeneration') === 2 && field(m, 'appliedGeneration') === 2);
  assert.equal(second.control.status().connection.sessionPresent, true, 'the broker kept the session');

  // Ground Control (or the broker) sends the same id again: not run again, the stored result repeated.
  await gc.publishCommand(ID, 'cmd-sync-1', 'sync-now');
  const dup = await gc.waitFor('duplicate result', (m) => m.channel === 'results' && field(m, 'commandId') === 'cmd-sync-1' && field(m, 'duplicate') === true);
  assert.equal(field(dup, 'ok'), true);
  assert.deepEqual(field(dup, 'result'), field(sync1, 'result'), 'the first run\'s outcome, not a new run');

  // The memory of ids is durable: again after another restart.
  await second.close();
  const third = await openSatellite(t, { dataDir, config });
  await gc.publishCommand(ID, 'cmd-sync-1', 'sync-now');
  await until('second duplicate', () => resultsFor(gc, ID, 'cmd-sync-1').length === 3);
  const all = resultsFor(gc, ID, 'cmd-sync-1');
  assert.deepEqual(all.map((m) => field(m, 'duplicate')), [false, true, true]);
  assert.ok(all.every((m) => field<{ finishedAt: string }>(m, 'result').finishedAt === run.finishedAt));
  assert.equal(resultsFor(gc, ID, 'cmd-report-1').length, 1);

  await gc.publishCommand(ID, 'cmd-gc-1', 'gc');
  const gcResult = await gc.waitFor('gc result', (m) => m.channel === 'results' && field(m, 'commandId') === 'cmd-gc-1');
  assert.equal(field(gcResult, 'ok'), true);
  assert.equal(typeof field<{ bytesFreed: number }>(gcResult, 'result').bytesFreed, 'number');

  // A malformed command is reported, not run.
  await gc.publishRaw(`hs/v1/satellites/${ID}/commands`, JSON.stringify({ type: 'command', satelliteId: ID, id: 'bad id!', name: 'sync-now', issuedAt: new Date().toISOString() }));
  const ev = await gc.waitFor('event for the bad command', (m) => m.channel === 'events' && field(m, 'code') === 'MESSAGE_INVALID');
  assert.equal(field(ev, 'level'), 'error');
  assert.ok(third.control.status().connection.connected);
  assertAllValid(gc);
});

test('broker restart: the client reconnects, the session survives, commands published during the outage arrive', async (t) => {
  const ID = 'sat-restart';
  const broker = await startBroker(t, { persistence: true });
  const gc = await connectGc(t, broker.url);
  const dataDir = await makeTempDir(t);
  const config = { satelliteId: ID, mqtt: { url: broker.url } };
  const sat = await openSatellite(t, { dataDir, config });
  await gc.waitFor('online', (m) => m.channel === 'presence' && m.satelliteId === ID && field(m, 'online') === true);

  await broker.stop();
  await until('satellite sees the outage', () => !sat.control.status().connection.connected);
  // Published while the broker is down: the publisher holds it until the broker is back.
  const published = gc.publishCommand(ID, 'cmd-outage', 'report');
  await broker.start();
  await published;
  const res = await gc.waitFor('result of the command from the outage', (m) => m.channel === 'results' && field(m, 'commandId') === 'cmd-outage', 15_000);
  assert.equal(field(res, 'ok'), true);
  const status = sat.control.status().connection;
  assert.equal(status.connected, true);
  assert.equal(status.sessionPresent, true, 'mosquitto persisted the session across its restart');
  assert.ok(status.reconnects >= 1);

  // Queued for the offline satellite, across a broker restart (persistence), delivered on its return.
  await sat.close();
  await gc.publishCommand(ID, 'cmd-queued', 'report');
  await broker.stop();
  await broker.start();
  const back = await openSatellite(t, { dataDir, config });
  const queued = await gc.waitFor('result of the queued command', (m) => m.channel === 'results' && field(m, 'commandId') === 'cmd-queued', 15_000);
  assert.equal(field(queued, 'duplicate'), false);
  assert.equal(back.control.status().connection.sessionPresent, true);
  assert.equal(resultsFor(gc, ID, 'cmd-outage').length, 1);
  assertAllValid(gc);
});
