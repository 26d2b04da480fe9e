import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as smolParse } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { makeTempDir } from '../helpers/tmp.ts';
import {
  DAEMON_JSON,
  EXISTING_UPSTREAM_HOSTS_TOML,
  JETSON_CONFIG_TOML,
  OTHER_HOSTS_TOML,
  OTHER_REGISTRIES_CONF,
  REGISTRIES_YAML,
  SHORTNAMES_CONF,
  satelliteCli,
  snapshot,
  writeFiles,
} from './helpers.ts';

const MIRROR = 'http://127.0.0.1:8585';
// smol-toml builds null-prototype objects; plain ones compare with deepEqual.
const parseToml = (text: string): any => JSON.parse(JSON.stringify(smolParse(text)));

/** Real-looking files of every runtime, under root. */
async function siteFiles(root: string): Promise<void> {
  await writeFiles(root, {
    'etc/containerd/config.toml': JETSON_CONFIG_TOML,
    'etc/containerd/certs.d/quay.io/hosts.toml': OTHER_HOSTS_TOML,
    'etc/containerd/certs.d/registry.example.com/hosts.toml': EXISTING_UPSTREAM_HOSTS_TOML,
    'etc/containers/registries.conf.d/000-shortnames.conf': SHORTNAMES_CONF,
    'etc/containers/registries.conf.d/60-quay.conf': OTHER_REGISTRIES_CONF,
    'etc/docker/daemon.json': DAEMON_JSON,
    'etc/rancher/k3s/registries.yaml': REGISTRIES_YAML,
  });
  await chmod(join(root, 'etc/docker/daemon.json'), 0o600);
}

async function configFile(t: Parameters<typeof makeTempDir>[0], runtimes: Record<string, unknown> = {}): Promise<{ file: string; dataDir: string }> {
  const dir = await makeTempDir(t, 'hs-rt-config-');
  const dataDir = join(dir, 'data');
  const file = join(dir, 'satellite.json');
  const all = { enabled: true };
  await writeFile(
    file,
    JSON.stringify({
      dataDir,
      registry: { listen: { host: '0.0.0.0', port: 8585 } },
      runtimes: {
        upstreams: ['registry.example.com', 'docker.io'],
        containerd: { ...all, setConfigPath: true },
        crio: all,
        docker: all,
        k3s: all,
        ...runtimes,
      },
    }),
  );
  return { file, dataDir };
}

test('runtime apply merges into every runtime\'s real-looking files, is idempotent, and revert restores them byte for byte', async (t) => {
  const root = await makeTempDir(t, 'hs-rt-root-');
  await siteFiles(root);
  const { file, dataDir } = await configFile(t);
  const before = await snapshot(root);
  const cli = (sub: string, ...extra: string[]) => satelliteCli(['runtime', sub, '--config', file, '--root', root, ...extra]);

  const show = await cli('show');
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /certs\.d\/docker\.io\/hosts\.toml: would create/);
  assert.match(show.stdout, /config\.toml: would modify/);
  assert.match(show.stdout, /warning: docker uses registry-mirrors for Docker Hub \(docker\.io\) images only: pulls from registry\.example\.com/);
  assert.deepEqual(await snapshot(root), before, 'show writes nothing');

  const applied = await cli('apply');
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stdout, /warning: docker uses registry-mirrors for Docker Hub/);
  assert.match(applied.stdout, /modified\s+\S+etc\/docker\/daemon\.json/);
  assert.match(applied.stdout, /created\s+\S+certs\.d\/docker\.io\/hosts\.toml/);
  const read = (rel: string) => readFile(join(root, rel), 'utf8');

  // containerd config.toml: exactly one line differs (config_path), the NVIDIA runtime intact.
  const configToml = await read('etc/containerd/config.toml');
  const oldLines = JETSON_CONFIG_TOML.split('\n');
  const newLines = configToml.split('\n');
  assert.equal(newLines.length, oldLines.length);
  const differing = newLines.filter((l, i) => l !== oldLines[i]);
  assert.deepEqual(differing, ['      config_path = "/etc/containerd/certs.d"']);
  const cfg = parseToml(configToml);
  const cri = cfg.plugins['io.containerd.grpc.v1.cri'];
  assert.equal(cri.containerd.default_runtime_name, 'nvidia');
  assert.equal(cri.containerd.runtimes.nvidia.options.BinaryName, '/usr/bin/nvidia-container-runtime');
  assert.equal(cri.containerd.runtimes.nvidia.runtime_type, 'io.containerd.runc.v2');
  assert.deepEqual(cri.registry.headers, { 'X-Site': ['shop-17'] });
  assert.equal(cri.registry.config_path, '/etc/containerd/certs.d');

  // hosts.toml: the satellite first, the site's own mirror kept after it; other hosts untouched.
  const upstream = parseToml(await read('etc/containerd/certs.d/registry.example.com/hosts.toml'));
  assert.equal(upstream.server, 'https://registry.example.com');
  assert.deepEqual(Object.keys(upstream.host), [MIRROR, 'https://registry-cache.site.example']);
  assert.deepEqual(upstream.host[MIRROR].capabilities, ['pull', 'resolve']);
  assert.equal(upstream.host[MIRROR].dial_timeout, '2s');
  assert.equal(upstream.host['https://registry-cache.site.example'].ca, '/etc/ssl/site-ca.pem');
  const hub = parseToml(await read('etc/containerd/certs.d/docker.io/hosts.toml'));
  assert.equal(hub.server, 'https://registry-1.docker.io');
  assert.deepEqual(Object.keys(hub.host), [MIRROR]);
  assert.equal(await read('etc/containerd/certs.d/quay.io/hosts.toml'), OTHER_HOSTS_TOML);

  // CRI-O / podman drop-in beside the others.
  const dropIn = parseToml(await read('etc/containers/registries.conf.d/50-harbor-satellite.conf'));
  assert.deepEqual(dropIn.registry, [
    { prefix: 'registry.example.com', location: 'registry.example.com', mirror: [{ location: '127.0.0.1:8585', insecure: true }] },
    { prefix: 'docker.io', location: 'docker.io', mirror: [{ location: '127.0.0.1:8585', insecure: true }] },
  ]);
  assert.equal(await read('etc/containers/registries.conf.d/60-quay.conf'), OTHER_REGISTRIES_CONF);

  // daemon.json: every key kept, satellite first among the mirrors, its indentation and mode kept.
  const daemonText = await read('etc/docker/daemon.json');
  const daemon = JSON.parse(daemonText);
  const old = JSON.parse(DAEMON_JSON);
  assert.deepEqual(daemon, { ...old, 'registry-mirrors': [MIRROR, 'https://mirror.gcr.io'], 'insecure-registries': ['127.0.0.1:8585'] });
  assert.deepEqual(Object.keys(daemon).slice(0, Object.keys(old).length), Object.keys(old));
  assert.match(daemonText, /^\{\n {4}"log-driver"/);
  assert.equal((await stat(join(root, 'etc/docker/daemon.json'))).mode & 0o777, 0o600);

  // registries.yaml: satellite first for both upstreams, the site's mirror, auth and comments kept.
  const yamlText = await read('etc/rancher/k3s/registries.yaml');
  const reg = parseYaml(yamlText);
  assert.deepEqual(reg.mirrors['docker.io'].endpoint, [MIRROR, 'https://mirror.site.example']);
  assert.deepEqual(reg.mirrors['registry.example.com'].endpoint, [MIRROR]);
  assert.deepEqual(reg.mirrors['quay.io'].endpoint, ['https://quay-mirror.site.example']);
  assert.deepEqual(reg.configs, parseYaml(REGISTRIES_YAML).configs);
  assert.match(yamlText, /# registries for this site \(k3s\)/);
  assert.match(yamlText, /# the site's pull-through cache/);

  // Applying again changes nothing: same bytes, same backups.
  const once = await snapshot(root);
  const state = await snapshot(dataDir);
  const again = await cli('apply');
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /^(created|modified|updated)/m);
  assert.deepEqual(await snapshot(root), once);
  assert.deepEqual(await snapshot(dataDir), state, 'backups and manifest untouched by a second apply');
  assert.match((await cli('show')).stdout, /daemon\.json: applied/);

  const reverted = await cli('revert');
  assert.equal(reverted.code, 0, reverted.stderr);
  assert.match(reverted.stdout, /restored\s+\S+daemon\.json/);
  assert.match(reverted.stdout, /removed\s+\S+docker\.io\/hosts\.toml/);
  assert.deepEqual(await snapshot(root), before, 'every file byte-identical, created files and dirs gone');
  assert.equal((await stat(join(root, 'etc/docker/daemon.json'))).mode & 0o777, 0o600);
  const manifest = JSON.parse(await readFile(join(dataDir, 'runtimes', 'manifest.json'), 'utf8'));
  assert.deepEqual(manifest.files, {});
  assert.deepEqual((await snapshot(join(dataDir, 'runtimes', 'backups'))).size, 0, 'backups removed after revert');
  const nothing = await cli('revert');
  assert.equal(nothing.code, 0);
  assert.match(nothing.stdout, /nothing to do/);
});

const MALFORMED: Array<[string, string, string, RegExp]> = [
  ['containerd config.toml', 'etc/containerd/config.toml', 'version = 2\n[plugins."io.containerd.grpc.v1.cri"\n', /config\.toml is not valid TOML \(line 2/],
  ['an upstream\'s hosts.toml', 'etc/containerd/certs.d/docker.io/hosts.toml', 'server = https://registry-1.docker.io\n', /docker\.io\/hosts\.toml is not valid TOML/],
  ['the registries.conf drop-in', 'etc/containers/registries.conf.d/50-harbor-satellite.conf', '[[registry]\nprefix = "x"\n', /50-harbor-satellite\.conf is not valid TOML/],
  ['daemon.json', 'etc/docker/daemon.json', '{ "log-driver": "json-file", }\n', /daemon\.json is not valid JSON/],
  ['daemon.json (not an object)', 'etc/docker/daemon.json', '["registry-mirrors"]\n', /daemon\.json must hold a JSON object/],
  ['registries.yaml', 'etc/rancher/k3s/registries.yaml', 'mirrors:\n  docker.io:\n    endpoint: [ "a"\n', /registries\.yaml is not valid YAML/],
  ['registries.yaml (endpoint not a list)', 'etc/rancher/k3s/registries.yaml', 'mirrors:\n  docker.io:\n    endpoint: 12\n', /mirrors\."docker\.io"\.endpoint must be a list/],
];

for (const [what, rel, text, message] of MALFORMED) {
  test(`malformed ${what}: apply fails naming the file and writes nothing anywhere`, async (t) => {
    const root = await makeTempDir(t, 'hs-rt-root-');
    await siteFiles(root);
    await writeFiles(root, { [rel]: text });
    const { file, dataDir } = await configFile(t);
    const before = await snapshot(root);
    const res = await satelliteCli(['runtime', 'apply', '--config', file, '--root', root]);
    assert.equal(res.code, 1, res.stdout);
    assert.match(res.stderr, message);
    assert.match(res.stderr, new RegExp(`${root}/${rel.replace(/\./g, '\\.')}`), 'the message names the file');
    assert.match(res.stderr, /nothing was changed/);
    assert.deepEqual(await snapshot(root), before);
    await assert.rejects(stat(join(dataDir, 'runtimes', 'manifest.json')), { code: 'ENOENT' });
    const show = await satelliteCli(['runtime', 'show', '--config', file, '--root', root]);
    assert.equal(show.code, 0);
    assert.match(show.stdout, /error: .*nothing was changed/);
  });
}

test('config errors: no upstreams exits 78 naming the key; an unknown runtime is refused', async (t) => {
  const { file } = await configFile(t, { upstreams: [] });
  const root = await makeTempDir(t, 'hs-rt-root-');
  const res = await satelliteCli(['runtime', 'apply', '--config', file, '--root', root]);
  assert.equal(res.code, 78);
  assert.match(res.stderr, /\/runtimes\/upstreams: list the registry hosts/);
  const bad = await configFile(t, { upstreams: ['../etc'] });
  const res2 = await satelliteCli(['runtime', 'show', '--config', bad.file]);
  assert.equal(res2.code, 78);
  assert.match(res2.stderr, /\/runtimes\/upstreams\/0/);
  const ok = await configFile(t);
  const res3 = await satelliteCli(['runtime', 'apply', '--config', ok.file, '--runtime', 'lxc', '--root', root]);
  assert.equal(res3.code, 2);
  assert.match(res3.stderr, /unknown runtime lxc/);
  assert.equal((await snapshot(root)).size, 0);
});
