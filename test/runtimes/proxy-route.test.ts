import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { makeTempDir } from '../helpers/tmp.ts';
import { SiteCa } from '../../src/https-proxy/index.ts';
import { DAEMON_JSON, satelliteCli, snapshot, writeFiles } from './helpers.ts';

const OVERRIDE = '[Service]\nLimitNOFILE=1048576\n';

test('runtime apply installs the HTTPS proxy route (drop-ins for docker and containerd, site CA in docker certs.d); revert restores byte for byte', async (t) => {
  const root = await makeTempDir(t, 'hs-rt-root-');
  await writeFiles(root, {
    'etc/docker/daemon.json': DAEMON_JSON,
    'etc/systemd/system/docker.service.d/override.conf': OVERRIDE,
  });
  const dir = await makeTempDir(t, 'hs-rt-config-');
  const dataDir = join(dir, 'data');
  const file = join(dir, 'satellite.json');
  await writeFile(
    file,
    JSON.stringify({
      dataDir,
      registry: { listen: { host: '0.0.0.0', port: 8585 } },
      httpsProxy: { enabled: true, listen: { host: '0.0.0.0', port: 3128 }, intercept: ['registry.example.com', 'upstream.test:5000'] },
      runtimes: {
        upstreams: ['registry.example.com'],
        docker: { enabled: true },
        containerd: { enabled: true },
        httpsProxy: { enabled: true, noProxy: ['localhost', '127.0.0.1', '::1', '.site.example'] },
      },
    }),
  );
  const cli = (sub: string) => satelliteCli(['runtime', sub, '--config', file, '--root', root]);
  const before = await snapshot(root);

  // The site CA is the daemon's: until it exists, apply refuses and writes nothing.
  const early = await cli('apply');
  assert.notEqual(early.code, 0);
  assert.match(early.stderr, /start the satellite once with httpsProxy\.enabled/);
  assert.deepEqual(await snapshot(root), before);

  const ca = await SiteCa.open(join(dataDir, 'site-ca'), pino({ level: 'silent' }));
  const applied = await cli('apply');
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stdout, /daemon-reload/);
  const read = (rel: string) => readFile(join(root, rel), 'utf8');
  for (const unit of ['docker', 'containerd']) {
    const dropIn = await read(`etc/systemd/system/${unit}.service.d/50-harbor-satellite-proxy.conf`);
    assert.match(dropIn, /^\[Service\]$/m);
    assert.match(dropIn, /^Environment="HTTPS_PROXY=http:\/\/127\.0\.0\.1:3128" "https_proxy=http:\/\/127\.0\.0\.1:3128"$/m);
    assert.match(dropIn, /^Environment="NO_PROXY=localhost,127\.0\.0\.1,::1,\.site\.example" "no_proxy=localhost,127\.0\.0\.1,::1,\.site\.example"$/m);
  }
  assert.equal(await read('etc/systemd/system/docker.service.d/override.conf'), OVERRIDE, "the admin's drop-in is untouched");
  assert.equal(await read('etc/docker/certs.d/registry.example.com/ca.crt'), ca.certPem);
  assert.equal(await read('etc/docker/certs.d/upstream.test:5000/ca.crt'), ca.certPem);
  // containerd: the CA where no mirror hosts.toml exists (upstream.test:5000); registry.example.com has the mirror route.
  assert.equal(await read('etc/containerd/certs.d/upstream.test:5000/ca.crt'), ca.certPem);
  assert.match(await read('etc/containerd/certs.d/registry.example.com/hosts.toml'), /^server = "https:\/\/registry\.example\.com"/m);
  await assert.rejects(read('etc/containerd/certs.d/registry.example.com/ca.crt'), { code: 'ENOENT' });
  assert.doesNotMatch(await read('etc/docker/certs.d/registry.example.com/ca.crt'), /PRIVATE KEY/);

  const once = await snapshot(root);
  const again = await cli('apply');
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(await snapshot(root), once, 'a second apply writes nothing');

  const reverted = await cli('revert');
  assert.equal(reverted.code, 0, reverted.stderr);
  assert.deepEqual(await snapshot(root), before, 'revert restores every file and removes the directories it created');
});
