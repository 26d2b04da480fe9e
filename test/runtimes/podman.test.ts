import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requestLog, startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startPodman } from '../helpers/podman.ts';
import { makeImage, hostPlatform } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { makeTempDir, type Teardown } from '../helpers/tmp.ts';
import { freePort } from '../helpers/ports.ts';
import { satelliteCli } from './helpers.ts';

// A name that does not resolve: only the drop-in's mirror or location can serve it. Every
// `location` is a loopback address, so no failure makes podman look the name up (FIELD-NOTES).
const UPSTREAM = 'upstream.test:5000';
const DROP_IN = join('etc', 'containers', 'registries.conf.d', '50-harbor-satellite.conf');


async function fixture(t: Teardown, seed: string) {
  const layout = await makeTempDir(t, 'hs-fixture-');
  const image = await makeImage(layout, { tag: 'v1', seed, layerSizes: [300_000, 100_000], platform: hostPlatform() });
  return { layout, image };
}

/** `satellite runtime apply --runtime crio --root ROOT`: the drop-in at its default path under ROOT. */
async function applyCrio(t: Teardown, mirrorUrl: string, server: string): Promise<{ root: string; text: string }> {
  const dir = await makeTempDir(t, 'hs-rt-');
  const root = join(dir, 'rootfs');
  const config = join(dir, 'satellite.json');
  await writeFile(config, JSON.stringify({ dataDir: join(dir, 'data'), runtimes: { mirrorUrl, upstreams: [{ host: UPSTREAM, server }], crio: { enabled: true } } }));
  const res = await satelliteCli(['runtime', 'apply', '--config', config, '--runtime', 'crio', '--root', root]);
  assert.equal(res.code, 0, res.stderr);
  return { root, text: await readFile(join(root, DROP_IN), 'utf8') };
}

test('podman pulls upstream.test:5000/... through the registries.conf.d drop-in `satellite runtime apply` wrote, served by the satellite', async (t) => {
  const { layout, image } = await fixture(t, 'rt-podman-served');
  const sat = await startSatellite(t);
  await skopeoCopy(`oci:${layout}:v1`, `docker://${sat.host}/fixtures/app:v1`);

  const closed = await freePort(); // the fallback: if the mirror failed, the pull would fail
  const { root, text } = await applyCrio(t, sat.url, `http://127.0.0.1:${closed}`);
  assert.match(text, /prefix = "upstream\.test:5000"/);
  assert.match(text, new RegExp(`location = "127\\.0\\.0\\.1:${closed}"`));

  // podman reads /etc/containers/registries.conf and then registries.conf.d/*.conf, as on a host.
  const podman = await startPodman(t, { registriesConfD: join(root, 'etc', 'containers', 'registries.conf.d') });
  // What podman made of it: exactly the drop-in's one entry (nothing from the machine's /etc/containers).
  const info = JSON.parse(await podman.run(['info', '--format', 'json'])) as { registries: Record<string, { Location: string; Mirrors: Array<{ Location: string; Insecure: boolean }> }> };
  assert.deepEqual(Object.keys(info.registries), [UPSTREAM]);
  assert.equal(info.registries[UPSTREAM]!.Location, `127.0.0.1:${closed}`);
  assert.deepEqual(info.registries[UPSTREAM]!.Mirrors.map((m) => [m.Location, m.Insecure]), [[sat.host, true]]);
  const started = Date.now();
  const id = await podman.pull(`${UPSTREAM}/fixtures/app:v1`);
  t.diagnostic(`podman pull via the satellite took ${Date.now() - started} ms`);
  const inspected = await podman.inspect(`${UPSTREAM}/fixtures/app:v1`);
  assert.equal(inspected.Id, id);
  assert.equal(inspected.Digest, image.manifestDigest);
  assert.ok(inspected.RepoDigests.includes(`${UPSTREAM}/fixtures/app@${image.manifestDigest}`), inspected.RepoDigests.join(', '));

  const served = requestLog(sat);
  assert.ok(served.some((r) => r.path === '/v2/fixtures/app/manifests/v1' && r.status === 200), 'manifest from the satellite');
  for (const blob of [image.configDigest, ...image.layerDigests]) {
    assert.ok(served.some((r) => r.path === `/v2/fixtures/app/blobs/${blob}` && r.status === 200), `blob ${blob} from the satellite`);
  }
});

test('podman falls back to the drop-in `location` (docker-registry on 127.0.0.1) when the satellite lacks the image', async (t) => {
  const { layout, image } = await fixture(t, 'rt-podman-fallback');
  const upstream = await startDockerRegistry(t, { accessLog: true });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/fixtures/only-upstream:v1`);
  const sat = await startSatellite(t);

  const { root, text } = await applyCrio(t, sat.url, upstream.url);
  assert.match(text, new RegExp(`location = "${upstream.host.replaceAll('.', '\\.')}"\\ninsecure = true`));

  const podman = await startPodman(t, { registriesConfD: join(root, 'etc', 'containers', 'registries.conf.d') });
  const started = Date.now();
  await podman.pull(`${UPSTREAM}/fixtures/only-upstream:v1`);
  t.diagnostic(`podman pull via the fallback took ${Date.now() - started} ms`);
  assert.equal((await podman.inspect(`${UPSTREAM}/fixtures/only-upstream:v1`)).Digest, image.manifestDigest);

  const misses = requestLog(sat).filter((r) => r.path.startsWith('/v2/fixtures/only-upstream/'));
  assert.ok(misses.length >= 1, 'podman asked the satellite first');
  for (const miss of misses) {
    assert.equal(miss.status, 404);
    assert.ok(miss.ms < 500, `the satellite answered 404 in ${miss.ms} ms`);
  }
  const access = upstream.logs().split('\n').filter((l) => /"(GET|HEAD) \/v2\/fixtures\/only-upstream\//.test(l));
  assert.ok(access.some((l) => /"(GET|HEAD) \/v2\/fixtures\/only-upstream\/manifests\/v1 HTTP\/1\.1" 200/.test(l)), 'manifest from the upstream');
  for (const blob of [image.configDigest, ...image.layerDigests]) {
    assert.ok(access.some((l) => l.includes(`"GET /v2/fixtures/only-upstream/blobs/${blob} `) && / 200 \d+ /.test(l)), `blob ${blob} from the upstream`);
  }
});
