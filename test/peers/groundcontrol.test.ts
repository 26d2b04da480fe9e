import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGroundControl, eventually } from '../helpers/groundcontrol.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeLayer, writeImage, sha256, type ImageFixture } from '../helpers/fixtures.ts';
import type { Satellite } from '../helpers/satellite.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { peersStatus, startSiteMember, verifiedBlobs } from './helpers.ts';

const MB = 1024 * 1024;
const AMD = { os: 'linux', architecture: 'amd64' };

test('Ground Control publishes site membership: satellites registered at one site share blobs without a static list', async (t) => {
  const registry = await startDockerRegistry(t);
  const wan = await startFaultProxy(t, { target: registry.host });
  const layout = await makeTempDir(t, 'hs-peers-fixture-');
  const base = await makeLayer('gc-peers-base', 24 * MB, { dir: layout });
  const images: Array<{ name: string; image: ImageFixture }> = [];
  for (const name of ['web', 'api']) {
    const own = await makeLayer(`gc-peers-${name}`, 12 * MB, { dir: layout });
    images.push({ name, image: await writeImage(layout, { tag: name, layers: [base, own], platform: AMD }) });
    await skopeoCopy(`oci:${layout}:${name}`, `docker://${registry.host}/site/${name}:v1`);
  }
  const setBytes = base.size + images.reduce((n, { image }) => n + image.layers[1]!.size + image.config.length, 0);

  const gc = await startGroundControl(t, { config: { upstream: { url: wan.url } } });
  const sats: Array<{ id: string; sat: Satellite }> = [];
  for (const name of ['pi-1', 'pi-2', 'pi-3']) sats.push(await startSiteMember(t, gc, name, 'harbour'));
  // Each satellite reports where its peers reach it; Ground Control records it.
  for (const { id, sat } of sats) {
    await eventually(async () => {
      const r = await gc.api<{ satellite: { status: { state: { peerUrl?: string } | null } | null } }>('GET', `/api/v1/satellites/${id}`);
      return r.body.satellite.status?.state?.peerUrl === sat.url ? true : undefined;
    }, 20_000, `peer URL of ${id}`);
  }

  // One assignment to the site: every member gets the images and the membership in one desired state.
  const before = wan.bytesFromTarget();
  assert.equal((await gc.api('PUT', '/api/v1/groups/edge', { name: 'edge', images: images.map(({ name }) => ({ repository: `site/${name}`, tags: ['v1'] })) })).status, 201);
  assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'edge', site: 'harbour' })).status, 201);
  for (const { sat } of sats) {
    await eventually(async () => {
      const res = await fetch(`${sat.url}/_satellite/status`);
      const doc = (await res.json()) as { sync: { appliedGeneration: number | null; desiredGeneration: number | null; running: boolean } };
      return doc.sync.desiredGeneration !== null && doc.sync.appliedGeneration === doc.sync.desiredGeneration && !doc.sync.running ? true : undefined;
    }, 60_000, 'sync applied');
  }
  const wanBytes = wan.bytesFromTarget() - before;
  if (wanBytes > setBytes * 1.2) for (const { sat } of sats) console.log(sat.logs().split('\n').filter((l) => /peer|member|desired|blob/.test(l)).join('\n'));
  t.diagnostic(`set ${(setBytes / MB).toFixed(1)} MiB; upstream sent ${(wanBytes / MB).toFixed(1)} MiB (${(wanBytes / setBytes).toFixed(2)}x)`);
  assert.ok(wanBytes <= setBytes * 1.2, `upstream sent ${wanBytes} for ${setBytes}`);

  const ids = sats.map((s) => s.id).sort();
  for (const { id, sat } of sats) {
    const st = await peersStatus(sat);
    assert.equal(st.self, id);
    assert.deepEqual(st.members.map((m) => m.key).sort(), ids.filter((x) => x !== id), 'members are the other two, by satellite id');
    for (const { name, image } of images) assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/site/${name}:v1`, { raw: true })), image.manifestDigest);
  }
  const stores = await Promise.all(sats.map(({ sat }) => verifiedBlobs(sat.dataDir)));
  for (const s of stores) assert.deepEqual(s, stores[0]);

  // A member leaves the site: the others' membership shrinks.
  const gone = sats[2]!;
  assert.equal((await gc.api('PATCH', `/api/v1/satellites/${gone.id}`, { site: 'elsewhere' })).status, 200);
  await eventually(async () => ((await peersStatus(sats[0]!.sat)).members.length === 1 ? true : undefined), 20_000, 'membership update');
  assert.deepEqual((await peersStatus(sats[0]!.sat)).members.map((m) => m.key), [sats[1]!.id]);
});
