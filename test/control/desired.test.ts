import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Channel, MAX_PAYLOAD_BYTES, encodeMessage, topic } from '../../src/protocol/index.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { startBroker } from './broker.ts';
import { assertAllValid, connectGc, emptyDesired, field, openSatellite, until } from './helpers.ts';

const ID = 'sat-desired';

test('retained desired state is applied and acknowledged; bad messages are rejected and reported, the last good state stays', async (t) => {
  const broker = await startBroker(t);
  const gc = await connectGc(t, broker.url);
  // Published before the satellite exists: retained, so it arrives on subscribe.
  await gc.publishDesired(ID, emptyDesired(1));

  const dataDir = await makeTempDir(t);
  const sat = await openSatellite(t, { dataDir, config: { satelliteId: ID, mqtt: { url: broker.url } } });

  await until('generation 1 applied', () => sat.sync.status().appliedGeneration === 1, 10_000, () => sat.sync.status());
  const ack = await gc.waitFor('a state report acknowledging generation 1', (m) => m.satelliteId === ID && m.channel === 'state' && field(m, 'desiredGeneration') === 1 && field(m, 'appliedGeneration') === 1);
  assert.equal(field(ack, 'type'), 'state');
  assert.equal(field(ack, 'version'), '0.1.0-test');
  const disk = field<{ blobs: number; bytes: number; condition: string; freeBytes: number; minFreeBytes: number }>(ack, 'disk');
  assert.deepEqual({ blobs: disk.blobs, bytes: disk.bytes, condition: disk.condition, minFreeBytes: disk.minFreeBytes }, { blobs: 0, bytes: 0, condition: 'ok', minFreeBytes: 0 });
  assert.ok(disk.freeBytes > 0);
  assert.equal((field<{ result: string }>(ack, 'lastSync')).result, 'ok');

  // Four bad messages on the satellite's own desired topic.
  const desiredTopic = topic(ID, Channel.desired);
  const bad: Array<[string, Buffer | string]> = [
    ['not JSON', '{"type":"desired",'],
    ['schema violation', encodeMessage({ type: 'desired', satelliteId: ID, issuedAt: new Date().toISOString(), state: { generation: 'two', images: [] } })],
    ['another satellite', encodeMessage({ type: 'desired', satelliteId: 'sat-other', issuedAt: new Date().toISOString(), state: emptyDesired(7) })],
    ['oversized', Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20)],
  ];
  for (const [, payload] of bad) await gc.publishRaw(desiredTopic, payload);
  // Invalid image names pass the message schema but not the desired-state rules.
  const badName = { ...emptyDesired(8), images: [{ repository: 'UPPER/Case', tags: ['x'] }] };
  await gc.publishRaw(desiredTopic, encodeMessage({ type: 'desired', satelliteId: ID, issuedAt: new Date().toISOString(), state: badName }));

  await until('five error events', () => gc.from(ID, 'events').length >= 5, 10_000, () => gc.from(ID, 'events').map((m) => m.body));
  const events = gc.from(ID, 'events');
  assert.deepEqual(
    events.map((m) => [field(m, 'level'), field(m, 'code')]),
    [
      ['error', 'MESSAGE_INVALID'],
      ['error', 'MESSAGE_INVALID'],
      ['error', 'MESSAGE_INVALID'],
      ['error', 'MESSAGE_INVALID'],
      ['error', 'DESIRED_STATE_INVALID'],
    ],
  );
  assert.match(field<string>(events[2]!, 'message'), /sat-other/);
  assert.match(field<string>(events[3]!, 'message'), /exceeds/);
  assert.equal(sat.sync.desired?.generation, 1, 'the last good desired state stays in force');

  // An older generation than the one in force is refused (warn), a newer one applied.
  await gc.publishDesired(ID, emptyDesired(3));
  await until('generation 3 applied', () => sat.sync.status().appliedGeneration === 3);
  await gc.publishDesired(ID, emptyDesired(2));
  const stale = await gc.waitFor('stale event', (m) => m.channel === 'events' && field(m, 'code') === 'DESIRED_STATE_STALE');
  assert.equal(field(stale, 'level'), 'warn');
  assert.equal(sat.sync.desired?.generation, 3);
  await gc.waitFor('report of generation 3', (m) => m.channel === 'state' && field(m, 'appliedGeneration') === 3 && field(m, 'desiredGeneration') === 3);

  // Every report the satellite sent is valid and its seq increases.
  const seqs = gc.from(ID, 'state').map((m) => field<number>(m, 'seq'));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.equal(new Set(seqs).size, seqs.length);
  assert.ok(sat.control.status().connection.connected);
  assertAllValid(gc);
});
