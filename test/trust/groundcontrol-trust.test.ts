import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, parseDesiredState, topic } from '../../src/protocol/index.ts';
import { computeDesired } from '../../src/groundcontrol/fleet/desired.ts';
import { addAndRegister, connectSatellite, startGroundControl, TEST_UPSTREAM } from '../helpers/groundcontrol.ts';
import { makeCosignKey } from '../helpers/cosign-sign.ts';
import type { GroupRecord } from '../../src/groundcontrol/db/records.ts';

test('computeDesired: each group with a policy covers its own repositories; the result is a valid desired state', () => {
  const k1 = makeCosignKey().publicKeyPem;
  const k2 = makeCosignKey().publicKeyPem;
  const at = '2026-01-01T00:00:00.000Z';
  const groups: GroupRecord[] = [
    { name: 'prod', images: [{ repository: 'apps/a', tags: ['1'] }, { repository: 'apps/b', tags: ['1'] }], trust: { mode: 'enforce', keys: [k1] }, createdAt: at, updatedAt: at },
    { name: 'lab', images: [{ repository: 'apps/b', tags: ['2'] }], trust: { mode: 'warn', keys: [k2] }, createdAt: at, updatedAt: at },
    { name: 'open', images: [{ repository: 'apps/c', tags: ['1'] }], createdAt: at, updatedAt: at },
  ];
  const state = computeDesired(groups, TEST_UPSTREAM, 7);
  assert.deepEqual(state.trust, [
    { name: 'lab', mode: 'warn', keys: [k2], repositories: ['apps/b'] },
    { name: 'prod', mode: 'enforce', keys: [k1], repositories: ['apps/a', 'apps/b'] },
  ]);
  assert.deepEqual(parseDesiredState(state), state);
  assert.equal(computeDesired([groups[2]!], TEST_UPSTREAM, 1).trust, undefined, 'no policy, no trust key');
});

test('Ground Control: a group with a signature policy publishes it; a bad key is refused with 400', async (t) => {
  const gc = await startGroundControl(t);
  const a = await addAndRegister(gc, 'alpha', 'dock-1');
  const client = await connectSatellite(t, gc.mqttUrl as string, a);
  await client.subscribeAsync(topic(a.satelliteId, 'desired'), { qos: 1 });
  const key = makeCosignKey().publicKeyPem;
  await gc.api('POST', '/api/v1/groups', { name: 'signed', images: [{ repository: 'apps/a', tags: ['1'] }], trust: { mode: 'enforce', keys: [key] } });
  await gc.api('POST', '/api/v1/assignments', { group: 'signed', satellite: a.satelliteId });
  const m = await client.inbox.next((x: { doc: any }) => x.doc?.state?.generation === 1, 5000, 'generation 1');
  const decoded = decodeMessage(m.topic, Buffer.from(JSON.stringify(m.doc)), { channel: 'desired', satelliteId: a.satelliteId });
  assert.deepEqual((decoded.message as { state: { trust: unknown } }).state.trust, [{ name: 'signed', mode: 'enforce', keys: [key], repositories: ['apps/a'] }]);

  const bad = await gc.api('POST', '/api/v1/groups', { name: 'broken', images: [{ repository: 'apps/a', tags: ['1'] }], trust: { mode: 'enforce', keys: ['nope'] } });
  assert.equal(bad.status, 400);
  assert.match(JSON.stringify(bad.body), /trust\/0\/keys\/0: not a PEM public key/);
  const badMode = await gc.api('POST', '/api/v1/groups', { name: 'broken', images: [{ repository: 'apps/a', tags: ['1'] }], trust: { mode: 'maybe', keys: [key] } });
  assert.equal(badMode.status, 400);
});
