import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { makeImage, hostPlatform } from '../helpers/fixtures.ts';
import { runSkopeo, skopeoCopy } from '../helpers/skopeo.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { freePort } from '../helpers/ports.ts';
import { satelliteCli } from './helpers.ts';

// skopeo reads registries.conf through containers/image, the library CRI-O and podman use.
test('the registries.conf drop-in `satellite runtime apply` wrote makes containers/image pull upstream.test:5000/... from the satellite', async (t) => {
  const layout = await makeTempDir(t, 'hs-fixture-');
  const image = await makeImage(layout, { tag: 'v1', seed: 'rt-registries-conf', layerSizes: [200_000], platform: hostPlatform() });
  const sat = await startSatellite(t);
  await skopeoCopy(`oci:${layout}:v1`, `docker://${sat.host}/fixtures/app:v1`);

  const dir = await makeTempDir(t, 'hs-rt-');
  const dropInFile = join(dir, 'registries.conf.d', '50-harbor-satellite.conf');
  const closed = await freePort(); // location stays on loopback even if the mirror failed
  const config = join(dir, 'satellite.json');
  await writeFile(config, JSON.stringify({
    dataDir: join(dir, 'data'),
    runtimes: { mirrorUrl: sat.url, upstreams: [{ host: 'upstream.test:5000', server: `http://127.0.0.1:${closed}` }], crio: { enabled: true, dropInFile } },
  }));
  const res = await satelliteCli(['runtime', 'apply', '--config', config]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(await readFile(dropInFile, 'utf8'), /prefix = "upstream\.test:5000"/);

  // The drop-in is a complete v2 registries.conf: use it as the only one.
  const out = await makeTempDir(t, 'hs-rt-out-');
  await runSkopeo(['--registries-conf', dropInFile, 'copy', 'docker://upstream.test:5000/fixtures/app:v1', `oci:${out}:v1`]);
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  assert.equal(index.manifests[0]!.digest, image.manifestDigest);
  assert.match(sat.logs(), /"path":"\/v2\/fixtures\/app\/manifests\/v1","status":200/);
});
