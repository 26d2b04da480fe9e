import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startContainerd } from '../helpers/containerd.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { satelliteCli } from '../runtimes/helpers.ts';
import { MiB } from '../proxy/helpers.ts';
import { run } from './helpers.ts';

const UPSTREAM = 'upstream.test:5000';

test('containerd (ctr with the HTTPS_PROXY of the drop-in runtime apply writes, CA from its certs.d) pulls through the satellite; again with the upstream stopped', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'https-proxy-ctr', layerSizes: [1 * MiB] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/tools/ctr:v1`);
  const sat = await startSatellite(t, {
    config: {
      proxy: { enabled: true, mirrors: [{ namespace: UPSTREAM, upstream: { url: upstream.url } }] },
      httpsProxy: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, intercept: [UPSTREAM] },
    },
  });
  const port = (JSON.parse((await sat.waitForLog(/"msg":"https proxy listening"/)).input) as { port: number }).port;

  // `satellite runtime apply` with the satellite's own config plus a runtimes section, into a root dir.
  const config = JSON.parse(await readFile(sat.configFile, 'utf8')) as Record<string, unknown>;
  config.runtimes = {
    mirrorUrl: sat.url,
    upstreams: ['docker.io'],
    containerd: { enabled: true, setConfigPath: true },
    httpsProxy: { enabled: true, url: `http://127.0.0.1:${port}` },
  };
  const applyConfig = join(await makeTempDir(t, 'hs-apply-'), 'satellite.json');
  await writeFile(applyConfig, JSON.stringify(config));
  const root = await makeTempDir(t, 'hs-rt-root-');
  const applied = await satelliteCli(['runtime', 'apply', '--config', applyConfig, '--root', root, '--runtime', 'containerd']);
  assert.equal(applied.code, 0, applied.stderr);
  const dropIn = await readFile(join(root, 'etc/systemd/system/containerd.service.d/50-harbor-satellite-proxy.conf'), 'utf8');
  const httpsProxy = /"HTTPS_PROXY=([^"]+)"/.exec(dropIn)?.[1];
  assert.equal(httpsProxy, `http://127.0.0.1:${port}`);
  const certsDir = join(root, 'etc/containerd/certs.d');

  const containerd = await startContainerd(t);
  // The environment systemd would give containerd from the drop-in (ctr 1.6 fetches in its own process).
  const ctrPull = () =>
    run('ctr', ['--address', containerd.address, 'images', 'pull', '--hosts-dir', certsDir, '--snapshotter', containerd.snapshotter, `${UPSTREAM}/tools/ctr:v1`], {
      HTTPS_PROXY: httpsProxy!,
      NO_PROXY: 'localhost,127.0.0.1,::1',
    });
  const first = await ctrPull();
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const ls = await run('ctr', ['--address', containerd.address, 'images', 'ls']);
  assert.match(ls.stdout, new RegExp(`${UPSTREAM}/tools/ctr:v1\\s+\\S+\\s+${img.manifestDigest}`));
  assert.match(sat.logs(), /"path":"\/v2\/tools\/ctr\/manifests\/v1\?ns=upstream.test%3A5000"/);

  await upstream.stop();
  await run('ctr', ['--address', containerd.address, 'images', 'rm', '--sync', `${UPSTREAM}/tools/ctr:v1`]);
  await run('ctr', ['--address', containerd.address, 'content', 'prune', 'references']);
  const second = await ctrPull();
  assert.equal(second.code, 0, second.stdout + second.stderr);
});
