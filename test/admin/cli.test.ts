import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { open, readFile, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, startSatellite, type Satellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { blobFile, exists, syncConfig, waitForGeneration, waitForStatus, writeDesired } from '../sync/helpers.ts';
import { AdminClient } from '../../src/admin/client.ts';
import type { GcReport, ImageRow, RunReport, StatusReport, VerifyReport } from '../../src/admin/types.ts';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `satellite <args> --config <the satellite's config>` as a separate process (no TTY). */
function cli(sat: Satellite, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO_ROOT, 'src', 'cli', 'satellite.ts'), ...args, '--config', sat.configFile],
      { cwd: REPO_ROOT, timeout: 120_000, env: { ...process.env, NODE_TEST_CONTEXT: '', RUNTIME_DIRECTORY: '' } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

async function cliJson<T>(sat: Satellite, ...args: string[]): Promise<{ code: number; body: T }> {
  const r = await cli(sat, ...args, '--json');
  try {
    return { code: r.code, body: JSON.parse(r.stdout) as T };
  } catch {
    throw new Error(`satellite ${args.join(' ')} --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** TCP ports a process listens on, from /proc (its socket inodes matched with the LISTEN entries). */
async function tcpListenPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]!);
  }
  const ports: number[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(1);
    for (const line of lines) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && inodes.has(cols[9]!)) ports.push(parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

test('satellite status, images, gc, verify and sync talk to the daemon over its admin socket', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const app = await makeImage(layout, { tag: 'app', seed: 'admin-cli-app', layerSizes: [300_000, 120_000] });
  const pushed = await makeImage(layout, { tag: 'pushed', seed: 'admin-cli-pushed', layerSizes: [200_000], platform: { os: 'linux', architecture: 'arm64' } });
  await skopeoCopy(`oci:${layout}:app`, `docker://${upstream.host}/fixtures/app:v1`);

  const desired = join(await makeTempDir(t, 'hs-desired-'), 'desired.json');
  const doc = (generation: number, tags: string[]) => ({ generation, upstream: { url: upstream.url }, images: [{ repository: 'fixtures/app', tags }] });
  await writeDesired(desired, doc(1, ['v1']));
  const sat = await startSatellite(t, { config: syncConfig(desired) });
  await waitForGeneration(sat, 1);

  // The socket: in <dataDir>/run, mode 0660, and nothing on TCP answers the admin API.
  const socket = join(sat.dataDir, 'run', 'satellite.sock');
  const st = await stat(socket);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o660);
  const ports = await tcpListenPorts(sat.proc.pid!);
  assert.ok(ports.includes(sat.port), `registry port ${sat.port} among ${ports}`);
  for (const port of ports) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/status`).catch(() => undefined);
    const body = res ? await res.text() : '';
    assert.ok(!body.includes('"generation"'), `TCP port ${port} answers the admin API`);
  }

  // status after a real sync: JSON and table.
  const status = await cliJson<StatusReport>(sat, 'status');
  assert.equal(status.code, 0);
  const { appliedAt, ...generation } = status.body.generation as typeof status.body.generation & { appliedAt?: string };
  assert.deepEqual(generation, { desired: 1, applied: 1, appliedFrom: 'sync' });
  assert.ok(appliedAt && Date.now() - Date.parse(appliedAt) < 120_000, `appliedAt ${appliedAt} is this run's`);
  assert.equal(status.body.upstream.reachable, true);
  assert.deepEqual(status.body.images.map((i) => [i.repository, i.reference, i.status, i.digest]), [['fixtures/app', 'v1', 'ok', app.manifestDigest]]);
  const appBytes = app.config.length + app.layers.reduce((n, l) => n + l.size, 0);
  assert.equal(status.body.disk.storeBytes, appBytes);
  assert.ok(status.body.disk.freeBytes > 0 && status.body.disk.totalBytes >= status.body.disk.freeBytes);
  assert.equal(status.body.control, null);
  const table = await cli(sat, 'status');
  assert.equal(table.code, 0);
  assert.match(table.stdout, /Upstream\s*│\s*http:\/\/127\.0\.0\.1:\d+ reachable/);
  assert.match(table.stdout, /applied 1 \/ desired 1/);
  assert.match(table.stdout, /fixtures\/app\s*│\s*v1\s*│\s*ok/);

  // images: a synced image (pulled once) and a pushed one.
  assert.equal((await fetch(`${sat.url}/v2/fixtures/app/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).status, 200);
  await skopeoCopy(`oci:${layout}:pushed`, `docker://${sat.host}/local/pushed:p1`);
  const images = await cliJson<ImageRow[]>(sat, 'images');
  assert.equal(images.code, 0);
  const byRepo = new Map(images.body.map((i) => [i.repository, i]));
  assert.deepEqual(byRepo.get('fixtures/app'), {
    repository: 'fixtures/app',
    tag: 'v1',
    digest: app.manifestDigest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    sizeBytes: app.size + appBytes,
    platforms: ['linux/amd64'],
    source: 'sync',
    lastPulledAt: byRepo.get('fixtures/app')?.lastPulledAt,
  });
  assert.ok(Date.now() - Date.parse(byRepo.get('fixtures/app')!.lastPulledAt!) < 60_000, 'last pulled just now');
  const pushedRow = byRepo.get('local/pushed')!;
  assert.equal(pushedRow.source, 'push');
  assert.deepEqual(pushedRow.platforms, ['linux/arm64']);
  assert.equal(pushedRow.lastPulledAt, null);
  const imagesTable = await cli(sat, 'images');
  assert.match(imagesTable.stdout, /local\/pushed\s*│\s*p1\s*│\s*[0-9a-f]{12}\s*│.*│\s*linux\/arm64\s*│\s*push\s*│\s*never/);
  assert.match(imagesTable.stdout, /fixtures\/app\s*│\s*v1\s*│.*│\s*sync\s*│.*ago/);

  // gc: the dry run's numbers are what the real collection frees.
  assert.equal((await fetch(`${sat.url}/v2/local/pushed/manifests/${pushed.manifestDigest}`, { method: 'DELETE' })).status, 202);
  const pushedBytes = pushed.config.length + pushed.layers.reduce((n, l) => n + l.size, 0);
  const dry = await cliJson<GcReport>(sat, 'gc', '--dry-run');
  assert.equal(dry.body.dryRun, true);
  assert.equal(dry.body.bytesFreed, pushedBytes);
  assert.equal(dry.body.blobsRemoved, 2);
  assert.ok(await exists(blobFile(sat.dataDir, pushed.layerDigests[0]!)), 'a dry run removes nothing');
  const real = await cli(sat, 'gc');
  assert.equal(real.code, 0);
  assert.match(real.stdout, new RegExp(`^freed .* \\(${pushedBytes} bytes\\): 2 blobs`));
  assert.equal(await exists(blobFile(sat.dataDir, pushed.layerDigests[0]!)), false);
  assert.equal((await cliJson<GcReport>(sat, 'gc', '--dry-run')).body.bytesFreed, 0);

  // verify: a flipped byte is found and named with the image it breaks.
  const layer = app.layers[0]!;
  const file = blobFile(sat.dataDir, layer.digest);
  const fh = await open(file, 'r+');
  const one = Buffer.alloc(1);
  await fh.read(one, 0, 1, 1000);
  one[0] = one[0]! ^ 0xff;
  await fh.write(one, 0, 1, 1000);
  await fh.close();
  const found = await cliJson<VerifyReport>(sat, 'verify');
  assert.equal(found.code, 1, 'bad blobs left in place: exit 1');
  assert.equal(found.body.blobs, 3);
  assert.deepEqual(found.body.bad.map((b) => [b.digest, b.problem]), [[layer.digest, 'corrupt']]);
  assert.deepEqual(found.body.brokenImages.map((i) => `${i.repository}:${i.reference}`), ['fixtures/app:v1']);
  const plain = await cli(sat, 'verify');
  assert.match(plain.stdout, /broken images:\n\s+fixtures\/app:v1/);
  assert.match(plain.stderr, /verified 3\/3 blobs/, 'plain progress lines without a TTY');

  const repaired = await cli(sat, 'verify', '--repair');
  assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
  assert.match(repaired.stdout, /quarantined/);
  const quarantined = await readdir(join(sat.dataDir, 'quarantine'));
  assert.equal(quarantined.length, 1);
  // The repair triggered a run; `sync --wait` joins or starts one and ends with the blob back.
  const synced = await cli(sat, 'sync', '--wait');
  assert.equal(synced.code, 0, synced.stdout + synced.stderr);
  await waitForStatus(sat, (s) => !s.sync.running && s.sync.images.every((i) => i.status === 'ok'));
  assert.equal(sha256(await readFile(file)), layer.digest, 'the layer is whole again');
  assert.equal((await cli(sat, 'verify')).code, 0);

  // sync --wait exits non-zero when an image fails (a tag missing upstream).
  await writeDesired(desired, doc(2, ['v1', 'missing']));
  await waitForStatus(sat, (s) => s.sync.desiredGeneration === 2);
  const failing = await cliJson<RunReport>(sat, 'sync', '--wait');
  assert.equal(failing.code, 1);
  assert.notEqual(failing.body.result, 'ok');
  assert.ok(failing.body.errors.some((e) => e.ref?.includes('missing')), JSON.stringify(failing.body.errors));
  const failedStatus = await cli(sat, 'status');
  assert.match(failedStatus.stdout, /fixtures\/app\s*│\s*missing\s*│\s*failed/);
  const failingTable = await cli(sat, 'sync', '--wait');
  assert.equal(failingTable.code, 1);
  assert.match(failingTable.stdout, /^sync (partial|failed)/);
  assert.match(failingTable.stdout, /missing/);
});

test('gc --dry-run explains the grace period that keeps young blobs; a stopped satellite is reported clearly', async (t) => {
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'young', seed: 'admin-cli-young', layerSizes: [100_000] });
  const sat = await startSatellite(t, { config: { store: { gcGraceSeconds: 3600 } } });
  await skopeoCopy(`oci:${layout}:young`, `docker://${sat.host}/local/young:v1`);
  assert.equal((await fetch(`${sat.url}/v2/local/young/manifests/${img.manifestDigest}`, { method: 'DELETE' })).status, 202);
  const dry = await cliJson<GcReport>(sat, 'gc', '--dry-run');
  assert.equal(dry.body.bytesFreed, 0);
  assert.equal(dry.body.keptYoung.blobs, 2);
  assert.equal(dry.body.keptYoung.bytes, img.config.length + img.layers[0]!.size);
  assert.equal(dry.body.keptYoung.graceSeconds, 3600);
  const text = await cli(sat, 'gc');
  assert.match(text.stdout, /^freed 0 B \(0 bytes\)/);
  assert.match(text.stdout, /kept 2 unreferenced blobs .* younger than the grace period of 1h0m \(store\.gcGraceSeconds/);
  assert.ok(await exists(blobFile(sat.dataDir, img.layerDigests[0]!)));

  await sat.stop();
  const down = await cli(sat, 'status');
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^satellite status: no satellite answers on .*satellite\.sock: is it running/);
  assert.equal(await exists(join(sat.dataDir, 'run', 'satellite.sock')), false, 'the socket is removed on stop');
});

test('status shows downloads in progress with bytes, rate and ETA; sync --wait draws bars on a terminal', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  await makeImage(layout, { tag: 'big', seed: 'admin-cli-big', layerSizes: [3_000_000] });
  await makeImage(layout, { tag: 'big2', seed: 'admin-cli-big2', layerSizes: [2_000_000] });
  await skopeoCopy(`oci:${layout}:big`, `docker://${upstream.host}/fixtures/big:v1`);
  await skopeoCopy(`oci:${layout}:big2`, `docker://${upstream.host}/fixtures/big2:v1`);
  const desired = join(await makeTempDir(t, 'hs-desired-'), 'desired.json');
  const doc = (generation: number, repos: string[]) => ({ generation, upstream: { url: upstream.url }, images: repos.map((repository) => ({ repository, tags: ['v1'] })) });
  await writeDesired(desired, doc(1, ['fixtures/big']));
  const rate = 250_000;
  const sat = await startSatellite(t, { config: syncConfig(desired, { bandwidthBytesPerSecond: rate, checkpointBytes: 262_144 }) });
  await sat.waitForLog(/"msg":"admin socket listening"/);
  const client = new AdminClient(join(sat.dataDir, 'run', 'satellite.sock'));

  let first: StatusReport | undefined;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    first = await client.status();
    if (first.downloads.some((d) => d.bytes > 0)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(first?.downloads.length, 'a download was seen in progress');
  // The CLI's own table, started at once (a CLI process takes a while to start on a loaded box).
  const tableRun = cli(sat, 'status');
  await new Promise((r) => setTimeout(r, 1200));
  const second = await client.status();
  const d = second.downloads[0];
  assert.ok(d, 'still downloading a second later');
  assert.ok(d.size > 3_000_000 && d.bytes > first.downloads[0]!.bytes && d.bytes < d.size, JSON.stringify(d));
  assert.ok(d.bytesPerSecond !== null && d.bytesPerSecond > rate / 4 && d.bytesPerSecond < rate * 2, `rate ${d.bytesPerSecond} for a ${rate} B/s limit`);
  assert.ok(d.etaSeconds !== null && d.etaSeconds > 0 && d.etaSeconds < 30, `ETA ${d.etaSeconds}`);
  const table = await tableRun;
  assert.match(table.stdout, /Downloads[\s\S]*\[#*-*\]\s+\d+%\s*│\s*[\d.]+ (KiB|MiB)\/2\.\d MiB/);
  await waitForGeneration(sat, 1);

  // On a terminal (script(1) gives the CLI a pty), sync --wait draws cli-progress bars.
  await writeDesired(desired, doc(2, ['fixtures/big', 'fixtures/big2']));
  await waitForStatus(sat, (s) => s.sync.desiredGeneration === 2);
  const command = [process.execPath, join(REPO_ROOT, 'src', 'cli', 'satellite.ts'), 'sync', '--wait', '--config', sat.configFile].map((a) => `'${a}'`).join(' ');
  const tty = await new Promise<CliResult>((resolve) => {
    execFile('script', ['-qec', command, '/dev/null'], { timeout: 120_000, env: { ...process.env, NODE_TEST_CONTEXT: '' } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
  assert.equal(tty.code, 0, tty.stdout + tty.stderr);
  assert.match(tty.stdout, /images\s+\[[█░]+\] \d+% \d\/\d ok/, 'the images bar');
  assert.match(tty.stdout, /[0-9a-f]{12} \[[█░]+\] \d+% [\d.]+ (KiB|MiB)\/1\.\d MiB/, 'a download bar with bytes');
  assert.match(tty.stdout, /sync ok: generation 2/);
});

test('a data directory too deep for a unix socket path leaves the registry running and says to set admin.socket', async (t) => {
  const base = await makeTempDir(t, 'hs-deep-');
  const dataDir = join(base, 'a'.repeat(60), 'b'.repeat(40));
  const sat = await startSatellite(t, { dataDir });
  await sat.waitForLog(/"msg":"admin socket path too long for a unix socket: no admin socket \(set admin.socket\)"/);
  assert.equal((await fetch(`${sat.url}/v2/`)).status, 200);
  const r = await cli(sat, 'status');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no satellite answers on/);
});

test('images names the pull-through cache as the source of what a proxy miss stored', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'px', seed: 'admin-cli-proxy', layerSizes: [80_000] });
  await skopeoCopy(`oci:${layout}:px`, `docker://${upstream.host}/fixtures/px:v1`);
  const sat = await startSatellite(t, { config: { proxy: { enabled: true, upstream: { url: upstream.url } } } });
  const got = await fetch(`${sat.url}/v2/fixtures/px/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(got.status, 200);
  await got.arrayBuffer();
  await sat.waitForLog(/"msg":"admin socket listening"/);
  const rows = (await cliJson<ImageRow[]>(sat, 'images')).body;
  const row = rows.find((r) => r.digest === img.manifestDigest);
  assert.ok(row, JSON.stringify(rows));
  assert.equal(row.source, 'proxy');
  assert.equal(row.tag, 'v1');
  assert.ok(row.lastPulledAt !== null, 'the pull through the proxy counts as a pull');
});
