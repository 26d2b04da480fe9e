import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { loadSatelliteConfig } from '../../src/config/index.ts';
import { availableBoards, defaultBoardDir } from '../../src/config/board.ts';

const CLI = join(REPO_ROOT, 'src', 'cli', 'satellite.ts');
const SHIPPED = ['generic-x86', 'jetson', 'raspberry-pi'];

/** Runs the satellite CLI; resolves with its exit code and output (never rejects on exit != 0). */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.NODE_TEST_CONTEXT;
  delete childEnv.SATELLITE_BOARD;
  delete childEnv.SATELLITE_CONFIG;
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { env: { ...childEnv, ...env }, cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('merge order: board profile < file < environment < command line; objects merge, arrays replace', async (t) => {
  const dir = await makeTempDir(t, 'hs-board-');
  const profile = join(dir, 'my-board.json');
  await writeFile(profile, JSON.stringify({
    dataDir: '/var/lib/from-profile',
    log: { level: 'warn' },
    registry: { maxConcurrentRequests: 11, maxManifestBytes: 65536, listen: { host: '10.0.0.1', port: 1111 } },
    sync: { platforms: ['linux/arm64', 'linux/arm/v7'], concurrency: 5 },
    store: { readChunkBytes: 65536 },
  }));
  const file = join(dir, 'satellite.json');
  await writeFile(file, JSON.stringify({
    board: './my-board.json',
    registry: { maxConcurrentRequests: 22, listen: { host: '10.0.0.2', port: 2222 } },
    sync: { platforms: ['linux/riscv64'] },
    log: { level: 'error' },
  }));
  const c = await loadSatelliteConfig({ file, env: { SATELLITE_LOG_LEVEL: 'debug', SATELLITE_LISTEN: '10.0.0.3:3333' }, overrides: { listen: '127.0.0.1:4444' } });
  assert.equal(c.board, profile, 'the file named the profile relative to itself');
  assert.equal(c.dataDir, '/var/lib/from-profile', 'profile value where nobody overrides it');
  assert.equal(c.store.readChunkBytes, 65536);
  assert.equal(c.registry.maxManifestBytes, 65536, 'objects merge: the profile key survives beside the file keys');
  assert.equal(c.registry.maxConcurrentRequests, 22, 'file beats profile');
  assert.equal(c.sync.concurrency, 5);
  assert.deepEqual(c.sync.platforms, ['linux/riscv64'], 'arrays replace, never concatenate');
  assert.equal(c.log.level, 'debug', 'environment beats file');
  assert.deepEqual(c.registry.listen, { host: '127.0.0.1', port: 4444 }, 'command line beats environment');
  assert.equal(c.registry.idleTimeoutSeconds, 60, 'embedded defaults under everything');

  const noCli = await loadSatelliteConfig({ file, env: { SATELLITE_LISTEN: '10.0.0.3:3333' } });
  assert.deepEqual(noCli.registry.listen, { host: '10.0.0.3', port: 3333 });
  assert.equal(noCli.log.level, 'error');
  const noEnv = await loadSatelliteConfig({ file, env: {} });
  assert.deepEqual(noEnv.registry.listen, { host: '10.0.0.2', port: 2222 });
  const noFile = await loadSatelliteConfig({ board: profile, env: {} });
  assert.deepEqual(noFile.registry.listen, { host: '10.0.0.1', port: 1111 });
  assert.deepEqual(noFile.sync.platforms, ['linux/arm64', 'linux/arm/v7']);
});

test('board selection: --board beats $SATELLITE_BOARD beats the file; names resolve in the install root', async (t) => {
  const dir = await makeTempDir(t, 'hs-board-');
  const file = join(dir, 'satellite.json');
  await writeFile(file, JSON.stringify({ board: 'raspberry-pi', dataDir: 'data' }));
  const fromFile = await loadSatelliteConfig({ file, env: {} });
  assert.equal(fromFile.board, join(REPO_ROOT, 'board', 'raspberry-pi.json'));
  assert.deepEqual(fromFile.sync.platforms, ['linux/arm64']);
  assert.equal(fromFile.dataDir, join(dir, 'data'), 'user wins, relative to the user file');
  const fromEnv = await loadSatelliteConfig({ file, env: { SATELLITE_BOARD: 'generic-x86' } });
  assert.deepEqual(fromEnv.sync.platforms, ['linux/amd64']);
  const fromCli = await loadSatelliteConfig({ file, env: { SATELLITE_BOARD: 'generic-x86' }, board: 'jetson' });
  assert.equal(fromCli.board, join(REPO_ROOT, 'board', 'jetson.json'));
  const none = await loadSatelliteConfig({ env: {} });
  assert.equal(none.board, undefined);
  assert.equal(none.sync.platforms, undefined, 'no profile, no default platform filter');
});

test('every shipped profile validates and says what it is for', async () => {
  assert.equal(defaultBoardDir(), join(REPO_ROOT, 'board'));
  assert.deepEqual(availableBoards(defaultBoardDir()), SHIPPED);
  const want: Record<string, string[]> = { 'generic-x86': ['linux/amd64'], jetson: ['linux/arm64'], 'raspberry-pi': ['linux/arm64'] };
  for (const name of SHIPPED) {
    const c = await loadSatelliteConfig({ board: name, env: {} });
    assert.equal(c.dataDir, '/var/lib/harbor-satellite', name);
    assert.deepEqual(c.sync.platforms, want[name], name);
    assert.ok(c.registry.sendBufferBudgetBytes <= 16 * 1024 * 1024, name);
    // A quota only: the pull-through cache stays off until the user turns it on.
    assert.equal(c.proxy.enabled, false, name);
    assert.ok((c.proxy.cacheQuotaBytes ?? 0) >= 8 * 1024 ** 3, name);
  }
  const pi = await loadSatelliteConfig({ board: 'raspberry-pi', env: {} });
  const x86 = await loadSatelliteConfig({ board: 'generic-x86', env: {} });
  assert.ok(pi.registry.maxConcurrentRequests < x86.registry.maxConcurrentRequests, 'the 1 GB board gets the tighter caps');
  assert.ok(pi.registry.sendBufferBudgetBytes < x86.registry.sendBufferBudgetBytes);
  assert.ok(pi.sync.concurrency < x86.sync.concurrency);
});

test('turning the proxy on in the user file keeps the profile\'s cache quota (objects merge)', async (t) => {
  const dir = await makeTempDir(t, 'hs-board-');
  const file = join(dir, 'satellite.json');
  await writeFile(file, JSON.stringify({ board: 'raspberry-pi', proxy: { enabled: true, upstream: { url: 'https://registry.example.com' } } }));
  const c = await loadSatelliteConfig({ file, env: {} });
  assert.equal(c.proxy.enabled, true);
  assert.equal(c.proxy.upstream?.url, 'https://registry.example.com');
  assert.equal(c.proxy.cacheQuotaBytes, 8 * 1024 ** 3);
});

test('a bad profile fails naming the profile and the key; an unknown board lists the shipped ones (exit 78)', async (t) => {
  const dir = await makeTempDir(t, 'hs-board-');
  const bad = join(dir, 'bad-board.json');
  await writeFile(bad, JSON.stringify({ registry: { maxConcurrentRequests: 0, bogus: true } }));
  await assert.rejects(loadSatelliteConfig({ board: bad, env: {} }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.ok(err.message.includes(`invalid board profile ${bad}:`), err.message);
    assert.match(err.message, /\/registry: unknown key "bogus"/);
    assert.match(err.message, /\/registry\/maxConcurrentRequests: must be >= 1/);
    return true;
  });
  const relative = join(dir, 'relative.json');
  await writeFile(relative, JSON.stringify({ dataDir: 'data', board: 'jetson' }));
  await assert.rejects(loadSatelliteConfig({ board: relative, env: {} }), (err: Error) => {
    assert.match(err.message, /\/dataDir: paths in a board profile must be absolute, got data/);
    assert.match(err.message, /\/board: a profile cannot name another board/);
    return true;
  });
  await assert.rejects(loadSatelliteConfig({ board: join(dir, 'missing.json'), env: {} }), /board profile .*missing\.json does not exist/);

  const unknown = await cli(['config', 'show', '--board', 'beaglebone']);
  assert.equal(unknown.code, 78);
  assert.match(unknown.stderr, /--board: unknown board "beaglebone"; available: generic-x86, jetson, raspberry-pi/);
  const file = join(dir, 'satellite.json');
  await writeFile(file, JSON.stringify({ board: '../../etc/passwd-ish' }));
  const viaFile = await cli(['config', 'show', '--config', file]);
  assert.equal(viaFile.code, 78);
  assert.match(viaFile.stderr, /\/board: board profile .* does not exist/);
  await writeFile(file, JSON.stringify({ board: 'Bad Name' }));
  const badName = await cli(['config', 'show'], { SATELLITE_CONFIG: file });
  assert.equal(badName.code, 78);
  assert.match(badName.stderr, /unknown board "Bad Name"/);
  const badProfile = await cli(['serve', '--board', bad]);
  assert.equal(badProfile.code, 78, 'serve refuses a bad profile too');
});

test('`satellite config show` prints the effective config with the board it used', async (t) => {
  const dir = await makeTempDir(t, 'hs-board-');
  const file = join(dir, 'satellite.json');
  await writeFile(file, JSON.stringify({ registry: { maxConcurrentRequests: 9 } }));
  const out = await cli(['config', 'show', '--config', file, '--board', 'raspberry-pi', '--data-dir', join(dir, 'd')], { SATELLITE_LOG_LEVEL: 'warn' });
  assert.equal(out.code, 0, out.stderr);
  const shown = JSON.parse(out.stdout) as Record<string, any>;
  assert.equal(shown.board, join(REPO_ROOT, 'board', 'raspberry-pi.json'));
  assert.equal(shown.dataDir, join(dir, 'd'));
  assert.equal(shown.registry.maxConcurrentRequests, 9);
  assert.equal(shown.registry.sendBufferBudgetBytes, 4194304);
  assert.deepEqual(shown.sync.platforms, ['linux/arm64']);
  assert.equal(shown.log.level, 'warn');
  const viaEnv = await cli(['config', 'show'], { SATELLITE_BOARD: 'generic-x86' });
  assert.deepEqual((JSON.parse(viaEnv.stdout) as Record<string, any>).sync.platforms, ['linux/amd64']);
});

test('from a bundle, board names resolve in the install root: dist/bundle/ in a checkout, <root>/board beside <root>/lib', async (t) => {
  const { cp, mkdir, rm } = await import('node:fs/promises');
  const { bundle } = await import('../../build.mjs');
  // Inside the repo, so the bundle's external lmdb resolves from node_modules as in the release.
  const root = join(REPO_ROOT, 'dist', `board-test-${process.pid}`);
  t.after(() => rm(root, { recursive: true, force: true }));
  await bundle(join(root, 'lib'));
  const show = async (entry: string) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    delete env.SATELLITE_BOARD;
    delete env.SATELLITE_CONFIG;
    const { stdout } = await promisify(execFile)(process.execPath, [entry, 'config', 'show', '--board', 'jetson'], { env, cwd: '/' });
    return JSON.parse(stdout) as { board: string };
  };
  // No board/ beside lib/ yet: the walk up finds the repository's.
  assert.equal((await show(join(root, 'lib', 'satellite.mjs'))).board, join(REPO_ROOT, 'board', 'jetson.json'));
  await mkdir(join(root, 'board'));
  await cp(join(REPO_ROOT, 'board', 'jetson.json'), join(root, 'board', 'jetson.json'));
  assert.equal((await show(join(root, 'lib', 'satellite.mjs'))).board, join(root, 'board', 'jetson.json'), 'the release layout wins');
});
