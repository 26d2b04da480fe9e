import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { buildRelease, listFiles, releaseVersion } from '../../build.mjs';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { spawnPeer, waitForLine } from '../helpers/process.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { makeTempDir, removeDir } from '../helpers/tmp.ts';
import { buildTestRelease, elfMachine, ELF_MACHINE, extract, listeningPort, nodeModulesAbove, run, toolsOnlyPath, writeTestConfig } from './helpers.ts';

let artifact: Awaited<ReturnType<typeof buildTestRelease>>;
before(async () => {
  artifact = await buildTestRelease('x64');
});
after(() => removeDir(artifact.dir));

test('the x64 tarball has the documented layout, sorted, owned by 0:0, one mtime', async () => {
  const version = await releaseVersion();
  const top = `harbor-satellite-${version}-linux-x64`;
  assert.equal(artifact.file, join(artifact.dir, `${top}.tar.gz`));
  const { stdout } = await run('tar', ['-tvzf', artifact.file, '--numeric-owner'], { maxBuffer: 64 * 1024 * 1024 });
  const lines = stdout.trim().split('\n');
  const names = lines.map((l) => l.split(/\s+/).slice(5).join(' '));
  assert.ok(names.every((n) => n === `${top}/` || n.startsWith(`${top}/`)), 'one top directory');
  // tar --sort=name: each directory's entries in byte order, depth first.
  const parts = (n: string) => n.replace(/\/$/, '').split('/');
  const byComponents = (a: string, b: string) => {
    const [pa, pb] = [parts(a), parts(b)];
    for (let i = 0; i < Math.min(pa.length, pb.length); i++) if (pa[i] !== pb[i]) return (pa[i] as string) < (pb[i] as string) ? -1 : 1;
    return pa.length - pb.length;
  };
  assert.deepEqual(names, [...names].sort(byComponents), 'entries sorted by name');
  assert.ok(lines.every((l) => l.split(/\s+/)[1] === '0/0'), 'owner 0/0');
  assert.equal(new Set(lines.map((l) => l.split(/\s+/).slice(3, 5).join(' '))).size, 1, 'one mtime');
  for (const path of [
    'bin/satellite', 'bin/groundcontrol', 'node/bin/node', 'node/LICENSE', 'lib/satellite.mjs', 'lib/satellite.mjs.map', 'lib/bcrypt-worker.mjs',
    'lib/groundcontrol.mjs', 'lib/groundcontrol.mjs.map', 'lib/console/app.js', 'lib/console/app.css', 'lib/node_modules/lmdb/package.json',
    'lib/node_modules/@lmdb/lmdb-linux-x64/node.napi.glibc.node',
    'lib/node_modules/@msgpackr-extract/msgpackr-extract-linux-x64/node.napi.glibc.node',
    'lib/node_modules/msgpackr/package.json', 'systemd/satellite.service', 'systemd/groundcontrol.service',
    'board/generic-x86.json', 'board/jetson.json', 'docs/operations.md',
    'board/raspberry-pi.json', 'docs/install.md', 'config/satellite.json', 'config/groundcontrol.json', 'LICENSE', 'SHA256SUMS', 'VERSION', 'install.sh',
  ]) {
    assert.ok(names.includes(`${top}/${path}`), `${path} in the tarball`);
  }
  assert.ok(!names.some((n) => /arm64|darwin|win32|musl|abi\d+/.test(n)), 'no other platform binaries');
  assert.ok(!names.some((n) => n.includes('node/include') || n.includes('/npm/')), 'only the node binary, no headers or npm');
});

test('extracted where no node_modules is above and no node is on PATH: --version, SHA256SUMS, serve + skopeo push/pull', async (t) => {
  const work = await makeTempDir(t, 'hs-release-run-');
  assert.equal(await nodeModulesAbove(work), undefined, 'no node_modules above the extraction dir');
  const root = await extract(artifact.file, join(work, 'x'));
  const version = await releaseVersion();
  assert.equal((await readFile(join(root, 'VERSION'), 'utf8')).trim(), version);
  assert.match(await readFile(join(root, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/);
  assert.equal(await elfMachine(join(root, 'node', 'bin', 'node')), ELF_MACHINE.x64);

  // Every file is listed and matches (sha256sum -c from coreutils, as an operator would run it).
  const listed = (await readFile(join(root, 'SHA256SUMS'), 'utf8')).trim().split('\n').map((l) => l.slice(66));
  assert.deepEqual(listed, (await listFiles(root)).filter((f) => f !== 'SHA256SUMS'));
  await run('sha256sum', ['-c', '--quiet', '--strict', 'SHA256SUMS'], { cwd: root });

  // PATH holds only a few tools, none of them node; the environment is otherwise empty.
  const path = await toolsOnlyPath(join(work, 'path'), ['sh', 'readlink', 'cat', 'ls']);
  const env = { PATH: path, HOME: work, LANG: 'C' };
  await assert.rejects(run('/bin/sh', ['-c', 'command -v node'], { env }), 'node must not be reachable');
  const { stdout: v } = await run(join(root, 'bin', 'satellite'), ['--version'], { env, cwd: work });
  assert.equal(v.trim(), version);
  // install.sh's self-check on the target (the native bindings load with this runtime).
  await run(join(root, 'node', 'bin', 'node'), ['--input-type=module', '-e', 'await import("lmdb"); await import("msgpackr-extract")'], { env, cwd: join(root, 'lib') });
  const { stdout: gv } = await run(join(root, 'bin', 'groundcontrol'), ['--version'], { env, cwd: work });
  assert.equal(gv.trim(), version);
  // Through a symlink from elsewhere (how /usr/local/bin/satellite points at it).
  await symlink(join(root, 'bin', 'satellite'), join(path, 'satellite'));
  const { stdout: viaLink } = await run('/bin/sh', ['-c', 'satellite --version'], { env, cwd: work });
  assert.equal(viaLink.trim(), version);

  const dataDir = join(work, 'data');
  const config = join(work, 'satellite.json');
  await writeTestConfig(config, dataDir);
  const proc = spawnPeer(join(root, 'bin', 'satellite'), ['serve', '--config', config], { env, cwd: work, name: 'release-satellite', maxLines: 2000 });
  t.after(() => proc.stop(10_000));
  const port = listeningPort((await waitForLine(proc, /"msg":"registry listening"/, 30_000)).input);
  const res = await fetch(`http://127.0.0.1:${port}/v2/`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();

  const layout = join(work, 'layout');
  const img = await makeImage(layout, { tag: 'v1', seed: 'release-x64', layerSizes: [300_000, 40_000] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://127.0.0.1:${port}/release/app:v1`);
  const pulled = join(work, 'pulled');
  await skopeoCopy(`docker://127.0.0.1:${port}/release/app:v1`, `oci:${pulled}:v1`);
  assert.equal(sha256(await skopeoInspect(`oci:${pulled}:v1`, { raw: true })), img.manifestDigest);
  for (const layer of img.layers) {
    const blob = await readFile(join(pulled, 'blobs', 'sha256', layer.digest.slice(7)));
    assert.equal(sha256(blob), layer.digest);
  }
  // The content store is in the data dir given, with its LMDB index (the native binding loaded).
  assert.ok((await stat(join(dataDir, 'blobs'))).isDirectory());
  const exit = await proc.stop(10_000);
  assert.equal(exit.code, 0, proc.describe());
});

test('building again gives a byte-identical tarball', async (t) => {
  const dir = await makeTempDir(t, 'hs-release-again-');
  const again = await buildRelease({ arch: 'x64', distDir: dir });
  assert.equal(again.bytes, artifact.bytes);
  assert.equal(again.sha256, artifact.sha256);
});
