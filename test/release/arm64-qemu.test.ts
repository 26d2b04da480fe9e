import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { releaseVersion } from '../../build.mjs';
import { requireBinary } from '../helpers/bin.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { spawnPeer, waitForLine } from '../helpers/process.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { makeTempDir, removeDir } from '../helpers/tmp.ts';
import { buildTestRelease, elfMachine, ELF_MACHINE, extract, listeningPort, run, toolsOnlyPath, writeTestConfig } from './helpers.ts';

// The arm64 Node binary is linked against glibc: qemu-user needs an arm64 sysroot for the dynamic
// loader and libc/libstdc++ (Debian libc6-arm64-cross, libstdc++6-arm64-cross).
const SYSROOT = '/usr/aarch64-linux-gnu';

test('the arm64 tarball runs under qemu-user: --version, serve answers GET /v2/, a push lands in LMDB', async (t) => {
  const qemu = requireBinary('qemu-aarch64-static');
  await access(join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1')).catch(() => {
    throw new Error(`missing arm64 sysroot ${SYSROOT}: run bash scripts/install-test-peers.sh`);
  });
  const artifact = await buildTestRelease('arm64');
  t.after(() => removeDir(artifact.dir));
  const version = await releaseVersion();
  assert.match(artifact.file, new RegExp(`harbor-satellite-${version.replaceAll('.', '\\.')}-linux-arm64\\.tar\\.gz$`));
  const work = await makeTempDir(t, 'hs-release-arm64-');
  const root = await extract(artifact.file, join(work, 'x'));
  await run('sha256sum', ['-c', '--quiet', '--strict', 'SHA256SUMS'], { cwd: root });
  const node = join(root, 'node', 'bin', 'node');
  assert.equal(await elfMachine(node), ELF_MACHINE.arm64);
  const lmdb = join(root, 'lib', 'node_modules', '@lmdb', 'lmdb-linux-arm64', 'node.napi.glibc.node');
  assert.equal(await elfMachine(lmdb), ELF_MACHINE.arm64);
  const extractBinding = join(root, 'lib', 'node_modules', '@msgpackr-extract', 'msgpackr-extract-linux-arm64', 'node.napi.glibc.node');
  assert.equal(await elfMachine(extractBinding), ELF_MACHINE.arm64);
  await assert.rejects(access(join(root, 'lib', 'node_modules', '@lmdb', 'lmdb-linux-x64')), 'no x64 binding in the arm64 tarball');

  const env = { PATH: await toolsOnlyPath(join(work, 'path'), ['sh']), HOME: work, LANG: 'C' };
  const qemuArgs = ['-L', SYSROOT, node];
  const { stdout } = await run(qemu, [...qemuArgs, '-p', 'process.arch'], { env });
  assert.equal(stdout.trim(), 'arm64');
  const { stdout: v } = await run(qemu, [...qemuArgs, join(root, 'lib', 'satellite.mjs'), '--version'], { env, cwd: work });
  assert.equal(v.trim(), version);

  const dataDir = join(work, 'data');
  const config = join(work, 'satellite.json');
  await writeTestConfig(config, dataDir);
  const proc = spawnPeer(qemu, [...qemuArgs, join(root, 'lib', 'satellite.mjs'), 'serve', '--config', config], {
    env,
    cwd: work,
    name: 'arm64-satellite',
    maxLines: 2000,
  });
  t.after(() => proc.stop(20_000));
  const started = Date.now();
  const port = listeningPort((await waitForLine(proc, /"msg":"registry listening"/, 180_000)).input);
  t.diagnostic(`arm64 satellite under qemu listening after ${Date.now() - started} ms`);
  const res = await fetch(`http://127.0.0.1:${port}/v2/`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();

  // A push and a read-back exercise the arm64 LMDB binding (index writes and reads).
  const layout = join(work, 'layout');
  const img = await makeImage(layout, { tag: 'v1', seed: 'release-arm64', layerSizes: [20_000], platform: { os: 'linux', architecture: 'arm64' } });
  await skopeoCopy(`oci:${layout}:v1`, `docker://127.0.0.1:${port}/arm/app:v1`, { timeoutMs: 180_000 });
  const raw = await skopeoInspect(`docker://127.0.0.1:${port}/arm/app:v1`, { raw: true, timeoutMs: 120_000 });
  assert.equal(sha256(raw), img.manifestDigest);
  const exit = await proc.stop(20_000);
  assert.equal(exit.code, 0, proc.describe());
  assert.ok((await readFile(join(dataDir, 'blobs', 'sha256', img.layers[0]!.digest.slice(7, 9), img.layers[0]!.digest.slice(7)))).length > 0);
});
