import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeMessage, topic } from '../../src/protocol/index.ts';
import { computeDesired, contentHash } from '../../src/groundcontrol/fleet/desired.ts';
import { addAndRegister, connectSatellite, startGroundControl, TEST_UPSTREAM } from '../helpers/groundcontrol.ts';

const D1 = `sha256:${'1'.repeat(64)}`;

test('desired state: retained per satellite, new generation only on change, merged across groups and sites', async (t) => {
  const gc = await startGroundControl(t);
  const a = await addAndRegister(gc, 'alpha', 'dock-1');
  const client = await connectSatellite(t, gc.mqttUrl as string, a);
  const inbox = client.inbox;
  await client.subscribeAsync(topic(a.satelliteId, 'desired'), { qos: 1 });
  const generation = (g: number) => (m: { doc: any }) => m.doc?.state?.generation === g;

  await t.test('assigning a group publishes generation 1, a valid DesiredMessage', async () => {
    await gc.api('POST', '/api/v1/groups', { name: 'base', images: [{ repository: 'library/nginx', tags: ['1.25'] }], platforms: ['linux/arm64'] });
    await gc.api('POST', '/api/v1/assignments', { group: 'base', satellite: a.satelliteId });
    const m = await inbox.next(generation(1), 5000, 'generation 1');
    // The satellite's own decoder accepts it.
    const decoded = decodeMessage(m.topic, Buffer.from(JSON.stringify(m.doc)), { channel: 'desired', satelliteId: a.satelliteId });
    // Trust material travels with it: Ground Control's bundle public key, as `groundcontrol bundle key` prints it.
    const bundleKey = (await readFile(join(gc.dataDir, 'bundle-signing.key'), 'utf8')).trim();
    const publicPem = createPublicKey(createPrivateKey(bundleKey)).export({ type: 'spki', format: 'pem' }) as string;
    assert.deepEqual(decoded.message.state, {
      generation: 1,
      upstream: TEST_UPSTREAM,
      platforms: ['linux/arm64'],
      images: [{ repository: 'library/nginx', tags: ['1.25'] }],
      bundleKeys: [publicPem],
    });
  });

  await t.test('changing the group publishes generation 2; an unchanged apply publishes nothing', async () => {
    await gc.api('PUT', '/api/v1/groups/base', { images: [{ repository: 'library/nginx', tags: ['1.26'] }], platforms: ['linux/arm64'] });
    const m = await inbox.next(generation(2), 5000, 'generation 2');
    assert.deepEqual(m.doc.state.images, [{ repository: 'library/nginx', tags: ['1.26'] }]);
    const before = inbox.messages.length;
    const same = await gc.api('PUT', '/api/v1/groups/base', { images: [{ repository: 'library/nginx', tags: ['1.26'] }], platforms: ['linux/arm64'] });
    assert.equal(same.body.changed, false);
    await sleep(400);
    assert.equal(inbox.messages.length, before, 'no message for an unchanged apply');
    assert.equal((await gc.api('GET', `/api/v1/satellites/${a.satelliteId}`)).body.satellite.desired.generation, 2);
  });

  await t.test('two groups: one merged list (tags and digests unioned per repository)', async () => {
    await gc.api('POST', '/api/v1/groups', {
      name: 'extra',
      images: [
        { repository: 'library/nginx', tags: ['1.25'], digests: [D1] },
        { repository: 'library/redis', tags: ['7'] },
      ],
      platforms: ['linux/arm64'],
    });
    await gc.api('POST', '/api/v1/assignments', { group: 'extra', satellite: a.satelliteId });
    const m = await inbox.next(generation(3), 5000, 'generation 3');
    assert.deepEqual(m.doc.state.images, [
      { repository: 'library/nginx', tags: ['1.25', '1.26'], digests: [D1] },
      { repository: 'library/redis', tags: ['7'] },
    ]);
    assert.deepEqual(m.doc.state.platforms, ['linux/arm64']);
  });

  await t.test('site assignment reaches the satellites of that site, and moving a satellite changes its state', async () => {
    const b = await addAndRegister(gc, 'bravo', 'dock-1');
    const c = await addAndRegister(gc, 'charlie', 'dock-2');
    const bClient = await connectSatellite(t, gc.mqttUrl as string, b);
    const bInbox = bClient.inbox;
    await bClient.subscribeAsync(topic(b.satelliteId, 'desired'), { qos: 1 });
    await gc.api('POST', '/api/v1/groups', { name: 'dock-apps', images: [{ repository: 'dock/crane', tags: ['v2'] }] });
    const assigned = await gc.api('POST', '/api/v1/assignments', { group: 'dock-apps', site: 'dock-1' });
    assert.deepEqual([...assigned.body.published].sort(), [a.satelliteId, b.satelliteId].sort());
    const mb = await bInbox.next(generation(1), 5000, 'bravo generation 1');
    assert.deepEqual(mb.doc.state.images, [{ repository: 'dock/crane', tags: ['v2'] }]);
    assert.equal(mb.doc.state.platforms, undefined);
    const ma = await inbox.next(generation(4), 5000, 'alpha generation 4');
    // Mixed platform filters: crane on every platform, the others on arm64 only.
    assert.deepEqual(ma.doc.state.images.map((i: { repository: string; platforms?: string[] }) => [i.repository, i.platforms]), [
      ['dock/crane', undefined],
      ['library/nginx', ['linux/arm64']],
      ['library/redis', ['linux/arm64']],
    ]);
    assert.equal((await gc.api('GET', `/api/v1/satellites/${c.satelliteId}`)).body.satellite.desired, null);

    await gc.api('PATCH', `/api/v1/satellites/${b.satelliteId}`, { site: 'dock-2' });
    const moved = await bInbox.next(generation(2), 5000, 'bravo generation 2');
    assert.deepEqual(moved.doc.state.images, [], 'no groups left: an empty list');
  });

  await t.test('unassigning publishes the remaining list', async () => {
    await gc.api('DELETE', `/api/v1/assignments?group=extra&satellite=${a.satelliteId}`);
    const m = await inbox.next(generation(5), 5000, 'generation 5');
    assert.deepEqual(m.doc.state.images.map((i: { repository: string }) => i.repository), ['dock/crane', 'library/nginx']);
  });

  await t.test('after a restart: a late subscriber gets the retained state; generations go on', async () => {
    client.end(true);
    await gc.stop();
    const again = await startGroundControl(t, { dataDir: gc.dataDir });
    const late = await connectSatellite(t, again.mqttUrl as string, a, { clean: true });
    const lateInbox = late.inbox;
    await late.subscribeAsync(topic(a.satelliteId, 'desired'), { qos: 1 });
    await lateInbox.next(generation(5), 5000, 'retained generation 5');
    assert.equal(lateInbox.messages[0]?.retain, true);
    await again.api('PUT', '/api/v1/groups/base', { images: [{ repository: 'library/nginx', tags: ['1.27'] }], platforms: ['linux/arm64'] });
    const m = await lateInbox.next(generation(6), 5000, 'generation 6');
    assert.deepEqual(m.doc.state.images.find((i: { repository: string }) => i.repository === 'library/nginx').tags, ['1.27']);
  });
});

test('computeDesired: deterministic merge; content hash ignores the generation', () => {
  const at = '2024-01-01T00:00:00.000Z';
  const g = (name: string, images: object[], platforms?: string[]) => ({ name, images, platforms, createdAt: at, updatedAt: at }) as never;
  const one = computeDesired([g('a', [{ repository: 'x/y', tags: ['2', '1'] }], ['linux/amd64']), g('b', [{ repository: 'x/y', tags: ['1'], platforms: ['linux/arm64'] }])], TEST_UPSTREAM, 7);
  assert.deepEqual(one, { generation: 7, upstream: TEST_UPSTREAM, platforms: ['linux/amd64', 'linux/arm64'], images: [{ repository: 'x/y', tags: ['1', '2'] }] });
  const two = computeDesired([g('b', [{ repository: 'x/y', tags: ['1'], platforms: ['linux/arm64'] }]), g('a', [{ repository: 'x/y', tags: ['2', '1'] }], ['linux/amd64'])], TEST_UPSTREAM, 8);
  assert.equal(contentHash(one), contentHash(two));
  const noFilter = computeDesired([g('a', [{ repository: 'x/y', tags: ['1'] }], ['linux/amd64']), g('b', [{ repository: 'x/y', tags: ['1'] }])], TEST_UPSTREAM, 1);
  assert.equal(noFilter.platforms, undefined, 'one group wants every platform');
  assert.equal(noFilter.images[0]?.platforms, undefined);
});
