import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeTempDir } from '../helpers/tmp.ts';
import { startBroker } from './broker.ts';
import { assertAllValid, connectGc, field, openSatellite, type Received } from './helpers.ts';

const ID = 'sat-unknown-cmd';
const command = (id: string, name: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: 'command', satelliteId: ID, id, name, issuedAt: new Date().toISOString(), ...extra });

test('a command this satellite does not know (a newer Ground Control\'s) gets an error result, not silence; a redelivery repeats it', async (t) => {
  const broker = await startBroker(t);
  const gc = await connectGc(t, broker.url);
  const sat = await openSatellite(t, { dataDir: await makeTempDir(t), config: { satelliteId: ID, mqtt: { url: broker.url } } });
  const topicName = `hs/v1/satellites/${ID}/commands`;
  const resultOf = (commandId: string, duplicate = false) => (m: Received) =>
    m.channel === 'results' && field(m, 'commandId') === commandId && field(m, 'duplicate') === duplicate;

  await gc.waitFor('the first report (subscribed by then)', (m) => m.channel === 'state', 15_000);
  await gc.publishRaw(topicName, command('cmd-defrag-1', 'defrag'));
  const unknown = await gc.waitFor('result of the unknown command', resultOf('cmd-defrag-1'), 15_000);
  assert.equal(field(unknown, 'ok'), false);
  assert.equal(field(unknown, 'name'), 'defrag');
  const error = field<{ code: string; message: string }>(unknown, 'error');
  assert.equal(error.code, 'COMMAND_UNKNOWN');
  assert.match(error.message, /does not know the command "defrag" \(it runs sync-now, gc, report, verify\)/);
  // The old behaviour stays too: the rejection is an event Ground Control counts.
  await gc.waitFor('event for the unknown command', (m) => m.channel === 'events' && field(m, 'code') === 'MESSAGE_INVALID');

  // An argument this version lacks: the command is known, the message is not valid for it.
  await gc.publishRaw(topicName, command('cmd-verify-x', 'verify', { args: { repair: true, deep: true } }));
  const invalid = await gc.waitFor('result of the invalid verify', resultOf('cmd-verify-x'), 15_000);
  assert.equal(field(invalid, 'ok'), false);
  assert.equal(field<{ code: string }>(invalid, 'error').code, 'COMMAND_INVALID');
  assert.match(field<{ message: string }>(invalid, 'error').message, /unknown key "deep"/);

  // Redelivered (same id): the stored refusal is repeated as a duplicate, not run or refused anew.
  await gc.publishRaw(topicName, command('cmd-defrag-1', 'defrag'));
  const dup = await gc.waitFor('duplicate refusal', resultOf('cmd-defrag-1', true), 15_000);
  assert.equal(field<{ code: string }>(dup, 'error').code, 'COMMAND_UNKNOWN');

  // Without an id nothing can be answered: only the event.
  const before = gc.from(ID, 'results').length;
  await gc.publishRaw(topicName, JSON.stringify({ type: 'command', satelliteId: ID, name: 'defrag' }));
  await gc.publishRaw(topicName, command('cmd-report-after', 'report'));
  await gc.waitFor('the next command still runs', resultOf('cmd-report-after'), 15_000);
  assert.equal(gc.from(ID, 'results').length, before + 1);
  assert.ok(sat.control.status().connection.connected);
  assertAllValid(gc);
});
