// What a satellite *host* that does not answer at all costs a containerd pull: the dial to the
// mirror hangs until containerd's dial timeout, then containerd falls back to the upstream.
// containerd 1.7+ honours the `dial_timeout` the satellite writes (2 s by default); 1.6 ignores the
// key and waits its own 30 s. The suite (test/runtimes/containerd.test.ts) checks the fallback with
// a refused connection and that `dial_timeout` is written; this measures the wait.
//   node --test --test-concurrency=1 bench/runtimes/dial-timeout.test.ts
// Figures in docs/runtimes.md (Timeouts). Needs the Debian peers (docker-registry, containerd, skopeo), python3 and root.
import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as smolParse } from 'smol-toml';
import { startDockerRegistry } from '../../test/helpers/docker-registry.ts';
import { startContainerd } from '../../test/helpers/containerd.ts';
import { hostPlatform, makeImage } from '../../test/helpers/fixtures.ts';
import { skopeoCopy } from '../../test/helpers/skopeo.ts';
import { makeTempDir } from '../../test/helpers/tmp.ts';
import { requireBinary } from '../../test/helpers/bin.ts';
import { spawnPeer, waitForLine } from '../../test/helpers/process.ts';
import { defer } from '../../test/helpers/cleanup.ts';
import { satelliteCli } from '../../test/runtimes/helpers.ts';

const UPSTREAM = 'upstream.test:5000';

test('containerd pull through a black-holed satellite host: time until the fallback to the upstream', { timeout: 600_000 }, async (t) => {
  const layout = await makeTempDir(t, 'hs-bench-');
  const image = await makeImage(layout, { tag: 'v1', seed: 'bench-dial-timeout', layerSizes: [300_000, 100_000], platform: hostPlatform() });
  const upstream = await startDockerRegistry(t);
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/fixtures/app:v1`);
  const containerd = await startContainerd(t);

  // A mirror whose SYNs go unanswered (a full accept queue): the dial hangs.
  const hole = spawnPeer(requireBinary('python3'), ['-c', [
    'import socket, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'port = s.getsockname()[1]',
    'fill = [socket.socket() for _ in range(4)]',
    'for c in fill: c.setblocking(False); c.connect_ex(("127.0.0.1", port))',
    'time.sleep(0.5); print("port", port, flush=True); time.sleep(3600)',
  ].join('\n')], { name: 'black-hole' });
  defer(t, () => hole.stop(2000));
  const port = Number((await waitForLine(hole, /^port (\d+)/, 10_000))[1]);

  // The hosts.toml as `satellite runtime apply` writes it, with the satellite's default dial_timeout.
  const dir = await makeTempDir(t, 'hs-bench-rt-');
  const certsDir = join(dir, 'certs.d');
  const config = join(dir, 'satellite.json');
  await writeFile(config, JSON.stringify({ dataDir: join(dir, 'data'), runtimes: { mirrorUrl: `http://127.0.0.1:${port}`, upstreams: [{ host: UPSTREAM, server: upstream.url }], containerd: { enabled: true, certsDir } } }));
  const res = await satelliteCli(['runtime', 'apply', '--config', config]);
  assert.equal(res.code, 0, res.stderr);
  const hosts = JSON.parse(JSON.stringify(smolParse(await readFile(join(certsDir, UPSTREAM, 'hosts.toml'), 'utf8')))) as { host: Record<string, { dial_timeout?: string }> };
  const dialTimeout = hosts.host[`http://127.0.0.1:${port}`]?.dial_timeout;

  // Each request round that goes to the network waits the dial timeout once. The first pull has an
  // empty content store (resolve, config, layers); later ones, in fresh namespaces, resolve again
  // but find the blobs in containerd's shared content store.
  const rows: string[] = [];
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    assert.equal(await containerd.pull(`${UPSTREAM}/fixtures/app:v1`, { hostsDir: certsDir, namespace: `hole-${i}`, timeoutMs: 240_000 }), image.manifestDigest);
    rows.push(`${i === 0 ? 'cold' : 'blobs cached'} ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const version = execFileSync(requireBinary('containerd'), ['--version'], { encoding: 'utf8' }).trim();
  t.diagnostic(`${version}; hosts.toml dial_timeout = ${dialTimeout ?? 'none'}`);
  t.diagnostic(`pull via the upstream with the satellite host black-holed: ${rows.join(', ')}`);
});
