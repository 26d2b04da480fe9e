import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerCredentials } from '../../src/peers/index.ts';
import { PeerClient } from '../../src/peers/client.ts';
import { peersConfigSchema } from '../../src/peers/index.ts';
import { validate } from '../../src/lib/validate.ts';
import type { PeersConfig } from '../../src/peers/index.ts';
import { startSatellite } from '../helpers/satellite.ts';

const OLD = 'site-secret-old-0123456789abcdef0123456789';
const NEW = 'site-secret-new-0123456789abcdef0123456789';

test('site secret rotation: current and configured always, previous only inside the grace window; what goes out, in order', () => {
  let now = 1_000_000;
  const c = new PeerCredentials({ configured: undefined, graceMs: 5000, now: () => now });
  assert.equal(c.accepts(`Bearer ${OLD}`), false, 'nothing is accepted before a secret exists');
  assert.equal(c.accepts(undefined), false);
  assert.deepEqual(c.outgoing(true), []);
  assert.equal(c.setSiteSecret(OLD), true);
  assert.equal(c.setSiteSecret(OLD), false, 'the same secret again is no rotation');
  assert.equal(c.accepts(`Bearer ${OLD}`), true);
  assert.equal(c.accepts(OLD), false, 'the Bearer scheme is part of it');
  c.setSiteSecret(NEW);
  assert.deepEqual([c.accepts(`Bearer ${NEW}`), c.accepts(`Bearer ${OLD}`)], [true, true]);
  assert.deepEqual(c.outgoing(true), [NEW, OLD], 'a member still on the old secret is tried with it');
  now += 5001;
  assert.deepEqual([c.accepts(`Bearer ${NEW}`), c.accepts(`Bearer ${OLD}`)], [true, false]);
  assert.deepEqual(c.outgoing(true), [NEW]);

  const both = new PeerCredentials({ configured: 'static-token-0123456789', graceMs: 0 });
  both.setSiteSecret(NEW);
  assert.deepEqual(both.outgoing(false), ['static-token-0123456789'], 'static members get the configured token');
  assert.deepEqual(both.outgoing(true), [NEW], 'members from Ground Control get the site secret');
  assert.equal(both.accepts('Bearer static-token-0123456789'), true);
  assert.equal(both.accepts(`Bearer ${'x'.repeat(5000)}`), false);
});

test('peer client: a 401 with the new secret is retried once with the previous one (a member that has not got the rotation yet)', async (t) => {
  const sat = await startSatellite(t, { config: { peers: { id: 'edge-a', token: OLD } } });
  const config = validate<PeersConfig>(peersConfigSchema, {}, 'peers', 'CONFIG_INVALID');
  const member = { key: 'edge-a', url: sat.url };
  const digest = `sha256:${'0'.repeat(64)}`;
  const rotated = new PeerClient(config, () => [NEW, OLD], 'edge-b');
  t.after(() => rotated.close());
  assert.deepEqual(await rotated.state(member, digest, { repo: 'a/b', fetch: false, waitMs: 0 }, AbortSignal.timeout(5000)), { state: 'absent' });
  const stale = new PeerClient(config, () => [NEW], 'edge-b');
  t.after(() => stale.close());
  await assert.rejects(stale.state(member, digest, { repo: 'a/b', fetch: false, waitMs: 0 }, AbortSignal.timeout(5000)), { code: 'PEER_UNAUTHORIZED' });
});
