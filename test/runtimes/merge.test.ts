import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as smolParse } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { loadSatelliteConfig } from '../../src/config/index.ts';
import { applyRuntimeConfig, revertRuntimeConfig, showRuntimes, stateDirOf, type RuntimesContext } from '../../src/runtimes/index.ts';
import { setCriConfigPath } from '../../src/runtimes/containerd-config.ts';
import { isSatelliteError } from '../../src/lib/errors.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { DAEMON_JSON, JETSON_CONFIG_TOML, NVIDIA_CTK_CONFIG_TOML, snapshot, writeFiles } from './helpers.ts';

const parseToml = (text: string): any => JSON.parse(JSON.stringify(smolParse(text)));

async function context(t: Parameters<typeof makeTempDir>[0], config: Record<string, unknown>): Promise<RuntimesContext> {
  const dir = await makeTempDir(t, 'hs-rt-config-');
  const file = join(dir, 'satellite.json');
  await writeFile(file, JSON.stringify({ dataDir: join(dir, 'data'), ...config }));
  const c = await loadSatelliteConfig({ file, env: {} });
  return { runtimes: c.runtimes, registry: c.registry, dataDir: c.dataDir, desiredStateFile: c.sync.desiredStateFile };
}

test('config_path goes into a config.toml without a registry table as one appended table; nothing else changes', () => {
  const out = setCriConfigPath(NVIDIA_CTK_CONFIG_TOML, '/etc/containerd/config.toml', '/etc/containerd/certs.d');
  assert.ok(out.startsWith(NVIDIA_CTK_CONFIG_TOML), 'the original text is kept as it was');
  assert.equal(out.slice(NVIDIA_CTK_CONFIG_TOML.length), '\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n');
  const doc = parseToml(out);
  assert.equal(doc.plugins['io.containerd.grpc.v1.cri'].containerd.runtimes.nvidia.options.BinaryName, '/usr/bin/nvidia-container-runtime');
  assert.equal(doc.plugins['io.containerd.grpc.v1.cri'].containerd.default_runtime_name, 'nvidia');
  assert.equal(setCriConfigPath(out, 'f', '/etc/containerd/certs.d'), out, 'idempotent');
  // containerd 2.x (version 3) keeps the registry under the images plugin.
  const v3 = setCriConfigPath('version = 3\n', 'f', '/etc/containerd/certs.d');
  assert.equal(parseToml(v3).plugins['io.containerd.cri.v1.images'].registry.config_path, '/etc/containerd/certs.d');
  // A dotted key defining the registry elsewhere cannot be merged by one line: refused, not garbled.
  assert.throws(
    () => setCriConfigPath('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  registry.config_path = "/x"\n', 'f', '/etc/containerd/certs.d'),
    (err) => isSatelliteError(err, 'RUNTIME_FILE_CONFLICT'),
  );
});

test('config_path is refused when config.toml still has CRI registry mirrors (containerd rejects both)', () => {
  const withMirrors = JETSON_CONFIG_TOML + '\n      [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n        endpoint = ["https://mirror.gcr.io"]\n';
  assert.throws(
    () => setCriConfigPath(withMirrors, '/etc/containerd/config.toml', '/etc/containerd/certs.d'),
    (err) => isSatelliteError(err, 'RUNTIME_FILE_CONFLICT') && /registry\.mirrors is set/.test(err.message) && err.message.includes('/etc/containerd/config.toml'),
  );
});

test('a changed config replaces what apply wrote, an upstream no longer listed is reverted, later edits by others are kept', async (t) => {
  const root = await makeTempDir(t, 'hs-rt-root-');
  await writeFiles(root, { 'etc/docker/daemon.json': DAEMON_JSON });
  const before = await snapshot(root);
  const runtimes = { upstreams: ['registry.example.com', 'docker.io'], containerd: { enabled: true }, docker: { enabled: true }, k3s: { enabled: true } };
  const ctx1 = await context(t, { registry: { listen: { host: '0.0.0.0', port: 8585 } }, runtimes });
  await applyRuntimeConfig(ctx1, { root });

  // New mirror URL and one upstream fewer; same state dir.
  const ctx2: RuntimesContext = { ...ctx1, runtimes: { ...ctx1.runtimes, mirrorUrl: 'http://192.0.2.10:9000', upstreams: ['docker.io'] } };
  const { changes } = await applyRuntimeConfig(ctx2, { root });
  const byFile = new Map(changes.map((c) => [c.file.slice(root.length), c.action]));
  assert.equal(byFile.get('/etc/containerd/certs.d/registry.example.com/hosts.toml'), 'removed');
  assert.equal(byFile.get('/etc/containerd/certs.d/docker.io/hosts.toml'), 'updated');
  const daemon = JSON.parse(await readFile(join(root, 'etc/docker/daemon.json'), 'utf8'));
  assert.deepEqual(daemon['registry-mirrors'], ['http://192.0.2.10:9000', 'https://mirror.gcr.io'], 'the old satellite URL is gone, not accumulated');
  assert.deepEqual(daemon['insecure-registries'], ['192.0.2.10:9000']);
  const yaml = parseYaml(await readFile(join(root, 'etc/rancher/k3s/registries.yaml'), 'utf8'));
  assert.deepEqual(Object.keys(yaml.mirrors), ['docker.io']);

  // Someone edits daemon.json after apply: a re-apply merges into their version.
  const edited = { ...daemon, debug: true };
  await writeFile(join(root, 'etc/docker/daemon.json'), `${JSON.stringify(edited, null, 2)}\n`);
  const shown = await showRuntimes(ctx2, { root });
  const docker = shown.plans.find((p) => p.runtime === 'docker')!;
  assert.equal(docker.files[0]!.changedSinceApply, true);
  assert.equal(docker.files[0]!.status, 'applied', 'their edit kept our settings in place');
  const reverted = await revertRuntimeConfig(ctx2);
  assert.equal(reverted.find((c) => c.file.endsWith('daemon.json'))!.changedSinceApply, true);
  assert.deepEqual(await snapshot(root), before, 'revert restores the original, not the edited version');
});

test('an HTTPS satellite: CA file in hosts.toml, registries.yaml and the drop-in; skip_verify without one', async (t) => {
  const root = await makeTempDir(t, 'hs-rt-root-');
  const all = { containerd: { enabled: true }, crio: { enabled: true }, docker: { enabled: true }, k3s: { enabled: true } };
  const tls = { cert: '/etc/hs/tls.crt', key: '/etc/hs/tls.key' };
  const ctx = await context(t, { registry: { listen: { host: 'edge-1.site', port: 8443 }, tls }, runtimes: { ...all, upstreams: ['registry.example.com'], caFile: '/etc/hs/ca.pem' } });
  await applyRuntimeConfig(ctx, { root });
  const hosts = parseToml(await readFile(join(root, 'etc/containerd/certs.d/registry.example.com/hosts.toml'), 'utf8'));
  assert.deepEqual(hosts.host['https://edge-1.site:8443'], { capabilities: ['pull', 'resolve'], ca: '/etc/hs/ca.pem', dial_timeout: '2s' });
  const yaml = parseYaml(await readFile(join(root, 'etc/rancher/k3s/registries.yaml'), 'utf8'));
  assert.deepEqual(yaml.configs['edge-1.site:8443'], { tls: { ca_file: '/etc/hs/ca.pem' } });
  const conf = parseToml(await readFile(join(root, 'etc/containers/registries.conf.d/50-harbor-satellite.conf'), 'utf8'));
  assert.deepEqual(conf.registry[0].mirror, [{ location: 'edge-1.site:8443' }], 'verified TLS: not insecure');
  const daemon = JSON.parse(await readFile(join(root, 'etc/docker/daemon.json'), 'utf8'));
  assert.deepEqual(daemon, { 'registry-mirrors': ['https://edge-1.site:8443'] });

  const root2 = await makeTempDir(t, 'hs-rt-root-');
  const noCa = await context(t, { registry: { listen: { host: '0.0.0.0', port: 8443 }, tls }, runtimes: { ...all, upstreams: ['registry.example.com'] } });
  await applyRuntimeConfig(noCa, { root: root2 });
  const h2 = parseToml(await readFile(join(root2, 'etc/containerd/certs.d/registry.example.com/hosts.toml'), 'utf8'));
  assert.deepEqual(h2.host['https://127.0.0.1:8443'], { capabilities: ['pull', 'resolve'], skip_verify: true, dial_timeout: '2s' });
  const y2 = parseYaml(await readFile(join(root2, 'etc/rancher/k3s/registries.yaml'), 'utf8'));
  assert.deepEqual(y2.configs['127.0.0.1:8443'], { tls: { insecure_skip_verify: true } });
});

test('upstreams default to the host of the desired-state file\'s upstream URL', async (t) => {
  const dir = await makeTempDir(t, 'hs-rt-desired-');
  const desired = join(dir, 'desired.json');
  await writeFile(desired, JSON.stringify({ generation: 1, upstream: { url: 'https://harbor.example.com:8443' }, images: [] }));
  const ctx = await context(t, { sync: { desiredStateFile: desired }, runtimes: { containerd: { enabled: true } } });
  const { spec } = await showRuntimes(ctx);
  assert.deepEqual(spec.upstreams.map((u) => [u.host, u.server]), [['harbor.example.com:8443', 'https://harbor.example.com:8443']]);
  assert.equal(spec.mirror.url, 'http://127.0.0.1:8585');
});

test('a symlinked runtime file is merged where it points; the link survives apply and revert', async (t) => {
  const root = await makeTempDir(t, 'hs-rt-root-');
  await writeFiles(root, { 'opt/site/daemon.json': DAEMON_JSON });
  await mkdir(join(root, 'etc/docker'), { recursive: true });
  await symlink('../../opt/site/daemon.json', join(root, 'etc/docker/daemon.json'));
  const before = await snapshot(root);
  const ctx = await context(t, { runtimes: { upstreams: ['docker.io'], docker: { enabled: true } } });
  await applyRuntimeConfig(ctx, { root });
  assert.ok((await lstat(join(root, 'etc/docker/daemon.json'))).isSymbolicLink());
  assert.deepEqual(JSON.parse(await readFile(join(root, 'opt/site/daemon.json'), 'utf8'))['registry-mirrors'], ['http://127.0.0.1:8585', 'https://mirror.gcr.io']);
  await revertRuntimeConfig(ctx);
  assert.ok((await lstat(join(root, 'etc/docker/daemon.json'))).isSymbolicLink());
  assert.deepEqual(await snapshot(root), before);
});

test('apply refuses while another live process holds the state lock; a dead holder\'s lock is taken over', async (t) => {
  const root = await makeTempDir(t, 'hs-rt-root-');
  const ctx = await context(t, { runtimes: { upstreams: ['docker.io'], containerd: { enabled: true } } });
  const lock = join(stateDirOf(ctx), 'lock');
  await mkdir(stateDirOf(ctx), { recursive: true });
  await writeFile(lock, String(process.pid)); // this test process: alive
  await assert.rejects(applyRuntimeConfig(ctx, { root }), (err) => isSatelliteError(err, 'RUNTIME_BUSY') && err.message.includes(lock));
  assert.equal((await snapshot(root)).size, 0);
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  await writeFile(lock, dead.stdout.toString());
  const { changes } = await applyRuntimeConfig(ctx, { root });
  assert.deepEqual(changes.map((c) => c.action), ['created']);
  await assert.rejects(lstat(lock), { code: 'ENOENT' }, 'released');
});

test('a damaged manifest stops apply and revert with RUNTIME_STATE_INVALID; nothing is written', async (t) => {
  const root = await makeTempDir(t, 'hs-rt-root-');
  const ctx = await context(t, { runtimes: { upstreams: ['docker.io'], containerd: { enabled: true } } });
  await mkdir(stateDirOf(ctx), { recursive: true });
  await writeFile(join(stateDirOf(ctx), 'manifest.json'), '{"version":1,"files":');
  await assert.rejects(applyRuntimeConfig(ctx, { root }), (err) => isSatelliteError(err, 'RUNTIME_STATE_INVALID') && err.message.includes('manifest.json'));
  await assert.rejects(revertRuntimeConfig(ctx), (err) => isSatelliteError(err, 'RUNTIME_STATE_INVALID'));
  assert.equal((await snapshot(root)).size, 0);
});

test('a runtime path that cannot be read (a file where a directory should be) is refused before anything is written', async (t) => {
  const root = await makeTempDir(t, 'hs-rt-root-');
  await writeFiles(root, { 'etc/rancher': 'not a directory\n' });
  const ctx = await context(t, { runtimes: { upstreams: ['docker.io'], containerd: { enabled: true }, k3s: { enabled: true } } });
  const before = await snapshot(root);
  await assert.rejects(applyRuntimeConfig(ctx, { root }), (err) => isSatelliteError(err, 'RUNTIME_FILE_UNREADABLE') && /registries\.yaml cannot be read \(ENOTDIR\)/.test(err.message));
  assert.deepEqual(await snapshot(root), before);
  const { plans } = await showRuntimes(ctx, { root });
  assert.match(plans.find((p) => p.runtime === 'k3s')!.files[0]!.error!.message, /ENOTDIR/);
});
