import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topic } from '../../src/protocol/index.ts';
import { addAndRegister, connectSatellite, eventually, startGroundControl, type GroundControl, type Registered, type TestMqttClient } from '../helpers/groundcontrol.ts';

const answer = (client: TestMqttClient, reg: Registered, cmd: { id: string; name: string }, ok = true) =>
  client.publishAsync(
    topic(reg.satelliteId, 'results'),
    JSON.stringify({
      type: 'result', satelliteId: reg.satelliteId, commandId: cmd.id, name: cmd.name, ok, duplicate: false,
      ...(ok ? { result: { started: true } } : { error: { code: 'GC_BUSY', message: 'busy' } }), at: new Date().toISOString(),
    }),
    { qos: 1 },
  );

const commandStatus = (gc: GroundControl, id: string, cid: string) => gc.api('GET', `/api/v1/satellites/${id}/commands/${cid}`).then((r) => r.body.command);

test('commands: QoS 1 to the satellite, delivered after it was offline (also across a Ground Control restart); results recorded', async (t) => {
  let gc = await startGroundControl(t);
  const s = await addAndRegister(gc, 'worker');

  await t.test('online: the command arrives with a fresh id and its result is recorded', async () => {
    const client = await connectSatellite(t, gc.mqttUrl as string, s);
    const inbox = client.inbox;
    await client.subscribeAsync(topic(s.satelliteId, 'commands'), { qos: 1 });
    const posted = await gc.api('POST', `/api/v1/satellites/${s.satelliteId}/commands`, { name: 'sync-now' });
    assert.equal(posted.status, 202);
    const cid = posted.body.command.id;
    assert.match(cid, /^c-[A-Za-z0-9_-]+$/);
    const m = await inbox.next((x) => x.doc.id === cid, 5000, 'the command');
    assert.deepEqual({ ...m.doc, issuedAt: undefined }, { type: 'command', satelliteId: s.satelliteId, id: cid, name: 'sync-now', issuedAt: undefined });
    await answer(client, s, m.doc);
    const done = await eventually(async () => {
      const c = await commandStatus(gc, s.satelliteId, cid);
      return c.status === 'ok' ? c : undefined;
    }, 5000, 'result ok');
    assert.deepEqual(done.result, { started: true });
    assert.equal(done.duplicate, false);
    await client.endAsync();
  });

  await t.test('offline at publish time: the persistent session delivers it on reconnect', async () => {
    const posted = await gc.api('POST', `/api/v1/satellites/${s.satelliteId}/commands`, { name: 'gc' });
    const cid = posted.body.command.id;
    await eventually(async () => (await commandStatus(gc, s.satelliteId, cid)).status === 'sent', 5000, 'broker acknowledged');
    const client = await connectSatellite(t, gc.mqttUrl as string, s); // clean: false, no new SUBSCRIBE
    const inbox = client.inbox;
    const m = await inbox.next((x) => x.doc.id === cid, 5000, 'the queued command');
    assert.equal(m.doc.name, 'gc');
    await answer(client, s, m.doc, false);
    const failed = await eventually(async () => {
      const c = await commandStatus(gc, s.satelliteId, cid);
      return c.status === 'failed' ? c : undefined;
    }, 5000, 'result failed');
    assert.deepEqual(failed.error, { code: 'GC_BUSY', message: 'busy' });
    await client.endAsync();
  });

  await t.test('offline across a Ground Control restart: the session survives in LMDB', async () => {
    const posted = await gc.api('POST', `/api/v1/satellites/${s.satelliteId}/commands`, { name: 'report' });
    const cid = posted.body.command.id;
    await eventually(async () => (await commandStatus(gc, s.satelliteId, cid)).status === 'sent', 5000, 'broker acknowledged');
    // SIGTERM: a clean stop in order, exit status 0.
    const exit = await gc.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.match(gc.logs(), /"msg":"stopped"/);
    gc = await startGroundControl(t, { dataDir: gc.dataDir });
    const client = await connectSatellite(t, gc.mqttUrl as string, s);
    const inbox = client.inbox;
    const m = await inbox.next((x) => x.doc.id === cid, 5000, 'the command queued before the restart');
    await answer(client, s, m.doc);
    await eventually(async () => (await commandStatus(gc, s.satelliteId, cid)).status === 'ok', 5000, 'result after restart');
    const list = await gc.api('GET', `/api/v1/satellites/${s.satelliteId}/commands`);
    assert.deepEqual(list.body.commands.map((c: { name: string; status: string }) => [c.name, c.status]), [['sync-now', 'ok'], ['gc', 'failed'], ['report', 'ok']]);
  });

  await t.test('commands for unknown satellites are 404', async () => {
    const res = await gc.api('POST', '/api/v1/satellites/nobody-000000/commands', { name: 'gc' });
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'SATELLITE_UNKNOWN');
  });
});
