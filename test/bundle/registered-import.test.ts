import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startGroundControl } from '../helpers/groundcontrol.ts';
import { startContainerd, writeHostsToml } from '../helpers/containerd.ts';
import { freePort } from '../helpers/ports.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { hostPlatform, makeLayer, writeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { gcBundleCli, satelliteCli } from './helpers.ts';

test('a registered satellite with no upstream link imports Ground Control\'s signed bundle with the key from registration; containerd pulls it', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-reg-layout-');
  const app = await writeImage(layout, { tag: 'app', layers: [await makeLayer('reg-app', 2_000_000, { dir: layout })], platform: hostPlatform() });
  await skopeoCopy(`oci:${layout}:app`, `docker://${upstream.host}/apps/app:v1`);

  const gc = await startGroundControl(t, { config: { upstream: { url: upstream.url } } });
  const created = await gc.api<{ satellite: { id: string }; registration: { token: string } }>('POST', '/api/v1/satellites', { name: 'ship-2' });
  assert.equal(created.status, 201);
  const id = created.body.satellite.id;
  assert.ok((await gc.api('POST', '/api/v1/groups', { name: 'edge', images: [{ repository: 'apps/app', tags: ['v1'] }] })).status < 300);
  assert.ok((await gc.api('POST', '/api/v1/assignments', { group: 'edge', satellite: id })).status < 300);
  const stick = join(await makeTempDir(t, 'hs-reg-stick-'), 'stick');
  const made = await gcBundleCli(gc.configFile, ['create', '--satellite', id, '-o', stick]);
  assert.equal(made.code, 0, made.stderr);

  // The site has no link to the upstream: it is gone before the satellite starts.
  await upstream.stop();
  const sat = await startSatellite(t, {
    config: { control: { groundControlUrl: gc.url, registrationToken: created.body.registration.token, reportIntervalSeconds: 3600 }, sync: { requireSignedBundles: true, intervalSeconds: 3600 } },
  });
  await sat.waitForLog(/"msg":"registered with Ground Control"/, 20_000);
  const identity = JSON.parse(await readFile(join(sat.dataDir, 'identity.json'), 'utf8')) as { bundleKey?: string };
  assert.match(identity.bundleKey ?? '', /^-----BEGIN PUBLIC KEY-----/, 'the key came with registration');

  // A tampered copy is refused by the running satellite, with the code.
  const bad = join(await makeTempDir(t, 'hs-reg-bad-'), 'stick');
  await cp(stick, bad, { recursive: true });
  const list = JSON.parse(await readFile(join(bad, 'bundle.json'), 'utf8')) as { images: Array<{ reference: string }> };
  list.images[0]!.reference = 'v2';
  await writeFile(join(bad, 'bundle.json'), JSON.stringify(list, null, 1));
  const refused = await satelliteCli(sat.configFile, ['import', bad]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /BUNDLE_SIGNATURE_INVALID/);

  const ok = await satelliteCli(sat.configFile, ['import', stick]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((JSON.parse(ok.stdout) as { bundleSignature: { status: string } }).bundleSignature.status, 'verified');

  // containerd pulls it from the satellite by the upstream's name (which no longer answers anywhere).
  const containerd = await startContainerd(t);
  const hostsDir = await makeTempDir(t, 'hs-reg-hosts-');
  await writeHostsToml(hostsDir, 'upstream.test:5000', {
    server: `http://127.0.0.1:${await freePort()}`,
    mirrors: [{ url: `http://${sat.host}`, capabilities: ['pull', 'resolve'] }],
  });
  assert.equal(await containerd.pull('upstream.test:5000/apps/app:v1', { hostsDir }), app.manifestDigest);
});
