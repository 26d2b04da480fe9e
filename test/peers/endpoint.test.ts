import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { spawnSatellite, startSatellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { seededBytes } from '../helpers/fixtures.ts';
import { rank } from '../../src/peers/index.ts';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const TOKEN = 'peer-token-abcdefghijklmnop';

test('peer endpoints: token required, state and ranged blob reads of referenced blobs, clear errors', async (t) => {
  const sat = await startSatellite(t, { config: { peers: { id: 'edge-a', static: [{ id: 'edge-b', url: 'http://127.0.0.1:9' }], token: TOKEN } } });
  const blob = seededBytes('peer-endpoint', 300_000);
  const digest = sha256(blob);
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  for (const b of [blob, config]) assert.equal((await fetch(`${sat.url}/v2/apps/x/blobs/uploads/?digest=${sha256(b)}`, { method: 'POST', body: b })).status, 201);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: blob.length }],
  });
  const put = await fetch(`${sat.url}/v2/apps/x/manifests/v1`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
  assert.equal(put.status, 201);
  // A blob no manifest lists (a push in progress, an upload left behind) is not the site's business.
  const loose = seededBytes('peer-endpoint-loose', 1000);
  assert.equal((await fetch(`${sat.url}/v2/apps/x/blobs/uploads/?digest=${sha256(loose)}`, { method: 'POST', body: loose })).status, 201);
  const auth = { authorization: `Bearer ${TOKEN}`, 'x-satellite-peer': 'edge-b' };

  const noToken = await fetch(`${sat.url}/_satellite/peer/state/${digest}`);
  assert.equal(noToken.status, 401);
  const wrong = await fetch(`${sat.url}/_satellite/peer/blobs/${digest}`, { headers: { authorization: `Bearer ${TOKEN.replace('a', 'b')}` } });
  assert.equal(wrong.status, 401);

  const st = await fetch(`${sat.url}/_satellite/peer/state/${digest}?wait=0`, { headers: auth });
  assert.equal(st.status, 200);
  assert.deepEqual(await st.json(), { state: 'present', size: blob.length });
  const missing = sha256(Buffer.from('nobody has this'));
  const absent = await fetch(`${sat.url}/_satellite/peer/state/${missing}?repo=apps/x&size=15&wait=300`, { headers: auth });
  assert.deepEqual(await absent.json(), { state: 'absent' }, 'no desired state: nothing to fetch it from');
  assert.deepEqual(await (await fetch(`${sat.url}/_satellite/peer/state/${sha256(loose)}?wait=0`, { headers: auth })).json(), { state: 'absent' });
  assert.equal((await fetch(`${sat.url}/_satellite/peer/blobs/${sha256(loose)}`, { headers: auth })).status, 404);
  assert.equal((await fetch(`${sat.url}/_satellite/peer/blobs/${missing}`, { headers: auth })).status, 404);
  assert.equal((await fetch(`${sat.url}/_satellite/peer/state/sha256:nothex`, { headers: auth })).status, 400);
  assert.equal((await fetch(`${sat.url}/_satellite/peer/nope/${digest}`, { headers: auth })).status, 404);
  assert.equal((await fetch(`${sat.url}/_satellite/peer/blobs/${digest}`, { method: 'DELETE', headers: auth })).status, 405);

  // Content-addressed: served whatever repository references it, with Range for resumes.
  const full = await fetch(`${sat.url}/_satellite/peer/blobs/${digest}`, { headers: auth });
  assert.equal(full.status, 200);
  assert.equal(sha256(Buffer.from(await full.arrayBuffer())), digest);
  const part = await fetch(`${sat.url}/_satellite/peer/blobs/${digest}`, { headers: { ...auth, range: 'bytes=100000-' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 100000-299999/300000`);
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(blob.subarray(100_000)));

  // Bytes served are counted as the socket takes them: the last ones may land just after the client
  // has read the body, so the status is read until it has caught up (a few ms).
  type PeerStatus = { peers: { self: string; bytesServed: number; peers: Array<{ id: string; bytesServed: number }> } };
  let status = (await (await fetch(`${sat.url}/_satellite/status`)).json()) as PeerStatus;
  for (let i = 0; i < 50 && status.peers.bytesServed < 500_000; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    status = (await (await fetch(`${sat.url}/_satellite/status`)).json()) as PeerStatus;
  }
  assert.equal(status.peers.self, 'edge-a');
  assert.equal(status.peers.bytesServed, 500_000);
  assert.equal(status.peers.peers.find((p) => p.id === 'edge-b')?.bytesServed, 500_000);
  // The device-facing registry is unchanged: the peer path is not an OCI route.
  assert.equal((await fetch(`${sat.url}/v2/apps/x/blobs/${digest}`, { method: 'HEAD' })).status, 200);
});

test('bad peers config stops the satellite with exit 78 naming the key', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ static: [{ url: 'http://127.0.0.1:1' }] }, /\/peers: needs id or advertiseUrl/],
    [{ id: 'a', static: [{ url: 'ftp://x' }] }, /\/peers\/static\/0\/url/],
    [{ id: 'a', token: 'short' }, /\/peers\/token/],
    [{ id: 'a', firstByteTimeoutMs: 0 }, /\/peers\/firstByteTimeoutMs/],
    [{ id: 'a', tokenFile: '/nonexistent/peer-token' }, /peers\.tokenFile: cannot read/],
    // Without a token the peer endpoints would be open to anyone reaching the port.
    [{ id: 'a', static: [{ url: 'http://127.0.0.1:1' }] }, /\/peers\/token: required/],
    [{ id: 'a' }, /\/peers\/token: required/],
  ];
  for (const [peers, message] of cases) {
    const sat = await spawnSatellite(t, { config: { peers } });
    const exit = await sat.proc.exited;
    assert.equal(exit.code, 78, `${JSON.stringify(peers)}: ${sat.logs()}`);
    assert.match(sat.logs(), message);
  }
  const dir = await makeTempDir(t, 'hs-peer-token-');
  await writeFile(join(dir, 'token'), 'tiny\n');
  const sat = await spawnSatellite(t, { config: { peers: { id: 'a', tokenFile: join(dir, 'token') } } });
  assert.equal((await sat.proc.exited).code, 78);
  assert.match(sat.logs(), /peers\.tokenFile: .* holds no token/);
});

test('rendezvous ranking: the same owner everywhere, fair shares, and a leaving member moves only its own blobs', () => {
  const keys = ['pi-1', 'pi-2', 'pi-3'];
  const digests = Array.from({ length: 3000 }, (_, i) => sha256(Buffer.from(`blob-${i}`)));
  const owners = new Map<string, string>();
  const share = new Map<string, number>();
  for (const d of digests) {
    const owner = rank(keys, d)[0]!;
    assert.equal(rank([...keys].reverse(), d)[0], owner, 'order of the member list does not matter');
    owners.set(d, owner);
    share.set(owner, (share.get(owner) ?? 0) + 1);
  }
  for (const k of keys) assert.ok(share.get(k)! > 850 && share.get(k)! < 1150, `share of ${k}: ${share.get(k)}`);
  for (const d of digests) {
    const now = rank(['pi-1', 'pi-2'], d)[0];
    if (owners.get(d) !== 'pi-3') assert.equal(now, owners.get(d), 'blobs of the remaining members stay put');
  }
});
