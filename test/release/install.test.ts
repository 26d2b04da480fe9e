import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, lstat, mkdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { releaseVersion, writeSha256Sums } from '../../build.mjs';
import { requireBinary } from '../helpers/bin.ts';
import { makeTempDir, removeDir } from '../helpers/tmp.ts';
import { buildTestRelease, extract, repack, run } from './helpers.ts';
import { modeOf, runInstall, seedRoot, treeListing, userIds } from './install-helpers.ts';

const TOKEN = 'hs-reg-0123456789abcdef';
const GC = 'https://gc.example.test:8480';
let artifact: Awaited<ReturnType<typeof buildTestRelease>>;
let version: string;

before(async () => {
  requireBinary('useradd');
  requireBinary('systemctl');
  version = await releaseVersion();
  artifact = await buildTestRelease('x64');
});
after(() => removeDir(artifact.dir));

// lstat: a dangling symlink (wants/ links point at /etc/..., outside the temp root) still exists.
const exists = (p: string) => lstat(p).then(() => true, () => false);

test('installs into a temp root: release, current link, user, data dir, config, token, unit; twice = same tree', async (t) => {
  const root = await makeTempDir(t, 'hs-install-root-');
  await seedRoot(root, 'Raspberry Pi 4 Model B Rev 1.4');
  const first = await runInstall(['--root', root, '--token', TOKEN, '--ground-control', GC, artifact.file]);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.match(first.stdout, /board: raspberry-pi/);

  const prefix = join(root, 'opt', 'harbor-satellite');
  assert.equal(await readlink(join(prefix, 'current')), `releases/${version}`);
  assert.equal(await readlink(join(prefix, 'bin')), 'current/bin');
  await run('sha256sum', ['-c', '--quiet', '--strict', 'SHA256SUMS'], { cwd: join(prefix, 'releases', version) });
  const ids = await userIds(root, 'harbor-satellite');
  assert.ok(ids, 'user created in <root>/etc/passwd');
  assert.equal(await userIds('/', 'harbor-satellite').catch(() => undefined), undefined, 'the host has no such user: ids come from the root');
  assert.match(await readFile(join(root, 'etc', 'group'), 'utf8'), new RegExp(`^harbor-satellite:x:${ids.gid}:`, 'm'));
  assert.match(await readFile(join(root, 'etc', 'shadow'), 'utf8'), /^harbor-satellite:!/m);

  assert.deepEqual(await modeOf(join(root, 'var', 'lib', 'harbor-satellite')), { mode: 0o700, ...ids });
  assert.deepEqual(await modeOf(join(root, 'etc', 'harbor-satellite')), { mode: 0o750, uid: 0, gid: ids.gid });
  const tokenFile = join(root, 'etc', 'harbor-satellite', 'registration-token');
  assert.deepEqual(await modeOf(tokenFile), { mode: 0o600, ...ids });
  assert.equal(await readFile(tokenFile, 'utf8'), `${TOKEN}\n`);
  const configFile = join(root, 'etc', 'harbor-satellite', 'satellite.json');
  assert.deepEqual(await modeOf(configFile), { mode: 0o640, uid: 0, gid: ids.gid });
  const shipped = JSON.parse(await readFile(join(prefix, 'current', 'config', 'satellite.json'), 'utf8')) as object;
  assert.deepEqual(JSON.parse(await readFile(configFile, 'utf8')), {
    board: 'raspberry-pi',
    control: { groundControlUrl: GC, registrationTokenFile: '/etc/harbor-satellite/registration-token' },
    ...shipped,
  });

  const unit = join(root, 'etc', 'systemd', 'system', 'satellite.service');
  assert.equal(await readFile(unit, 'utf8'), await readFile(join(prefix, 'current', 'systemd', 'satellite.service'), 'utf8'));
  assert.equal((await modeOf(unit)).mode, 0o644);
  assert.equal(await readlink(join(root, 'etc', 'systemd', 'system', 'multi-user.target.wants', 'satellite.service')), '/etc/systemd/system/satellite.service');
  assert.equal(await readlink(join(root, 'usr', 'local', 'bin', 'satellite')), '/opt/harbor-satellite/bin/satellite');
  // The ExecStart path, as laid out under the root, runs (through the bin -> current/bin links).
  const { stdout } = await run(join(prefix, 'bin', 'satellite'), ['--version'], { env: { PATH: '/nonexistent' } });
  assert.equal(stdout.trim(), version);
  // The installed satellite accepts the config the installer wrote, with the board profile found
  // in the installed release (board < file: the Pi profile's platform filter is in force).
  const shown = await run(join(prefix, 'bin', 'satellite'), ['config', 'show', '--config', configFile], { env: { PATH: '/usr/bin:/bin' } });
  const effective = JSON.parse(shown.stdout) as { board: string; sync: { platforms: string[] }; control: Record<string, unknown>; dataDir: string };
  assert.equal(effective.board, join(prefix, 'releases', version, 'board', 'raspberry-pi.json'));
  assert.deepEqual(effective.sync.platforms, ['linux/arm64']);
  assert.equal(effective.control.registrationTokenFile, '/etc/harbor-satellite/registration-token');
  assert.equal(effective.dataDir, '/var/lib/harbor-satellite');

  const before = await treeListing(root);
  const second = await runInstall(['--root', root, '--token', TOKEN, '--ground-control', GC, artifact.file]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /already installed and intact/);
  assert.match(second.stdout, /keeping the existing \/etc\/harbor-satellite\/satellite.json/);
  assert.deepEqual(await treeListing(root), before);
});

test('board: detected Jetson / none, --board overrides; an existing config is never overwritten; --no-enable', async (t) => {
  const plain = await makeTempDir(t, 'hs-install-x86-');
  await seedRoot(plain);
  const r1 = await runInstall(['--root', plain, '--no-enable', artifact.file]);
  assert.equal(r1.code, 0, r1.stderr);
  const config = JSON.parse(await readFile(join(plain, 'etc', 'harbor-satellite', 'satellite.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.board, 'generic-x86');
  assert.equal(config.control, undefined, 'no control section without --ground-control');
  assert.equal(await exists(join(plain, 'etc', 'systemd', 'system', 'multi-user.target.wants', 'satellite.service')), false);
  assert.match(r1.stdout, /--no-enable/);

  const jetson = await makeTempDir(t, 'hs-install-jetson-');
  await seedRoot(jetson, 'NVIDIA Jetson AGX Orin Developer Kit');
  const rj = await runInstall(['--root', jetson, '--no-enable', artifact.file]);
  assert.equal(rj.code, 0, rj.stderr);
  assert.equal((JSON.parse(await readFile(join(jetson, 'etc', 'harbor-satellite', 'satellite.json'), 'utf8')) as { board: string }).board, 'jetson');

  const pi = await makeTempDir(t, 'hs-install-override-');
  await seedRoot(pi, 'NVIDIA Jetson Orin Nano Developer Kit');
  await mkdir(join(pi, 'etc', 'harbor-satellite'), { recursive: true });
  const mine = '{ "dataDir": "/srv/mine", "log": { "level": "debug" } }\n';
  await writeFile(join(pi, 'etc', 'harbor-satellite', 'satellite.json'), mine);
  const r2 = await runInstall(['--root', pi, '--board', 'raspberry-pi', '--ground-control', GC, artifact.file]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(await readFile(join(pi, 'etc', 'harbor-satellite', 'satellite.json'), 'utf8'), mine, 'user config kept');
  assert.doesNotMatch(r2.stdout, /board: jetson/, '--board wins over detection');

  const bad = await runInstall(['--root', pi, '--board', 'no-such-board', artifact.file]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /no board profile 'no-such-board' in this release \(have: .*raspberry-pi/);
});

test('--prefix: the release, the unit and the command links use it', async (t) => {
  const root = await makeTempDir(t, 'hs-install-prefix-');
  await seedRoot(root);
  const r = await runInstall(['--root', root, '--prefix', '/srv/hs', '--no-enable', artifact.file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await readlink(join(root, 'srv', 'hs', 'current')), `releases/${version}`);
  assert.equal(await exists(join(root, 'opt', 'harbor-satellite')), false);
  const unit = await readFile(join(root, 'etc', 'systemd', 'system', 'satellite.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/srv\/hs\/bin\/satellite serve --config \/etc\/harbor-satellite\/satellite.json$/m);
  assert.doesNotMatch(unit, /\/opt\/harbor-satellite\//);
  assert.equal(await readlink(join(root, 'usr', 'local', 'bin', 'satellite')), '/srv/hs/bin/satellite');
  assert.equal((await runInstall(['--root', root, '--prefix', '/srv/hs', '--uninstall'])).code, 0);
  assert.equal(await exists(join(root, 'srv', 'hs')), false);
  assert.equal(await exists(join(root, 'usr', 'local', 'bin', 'satellite')), false);
});

test('--ground-control without a token points at the boot-partition token file (flashed image)', async (t) => {
  const root = await makeTempDir(t, 'hs-install-image-');
  await seedRoot(root, 'Raspberry Pi 5 Model B Rev 1.0');
  const r = await runInstall(['--root', root, '--ground-control', GC, artifact.file]);
  assert.equal(r.code, 0, r.stderr);
  const config = JSON.parse(await readFile(join(root, 'etc', 'harbor-satellite', 'satellite.json'), 'utf8')) as { control: unknown };
  assert.deepEqual(config.control, { groundControlUrl: GC, registrationTokenFile: '/boot/firmware/harbor-satellite-token' });
  assert.equal(await exists(join(root, 'etc', 'harbor-satellite', 'registration-token')), false);
});

test('--groundcontrol installs Ground Control: its unit, config, 0700 data dir; purge removes them', async (t) => {
  const root = await makeTempDir(t, 'hs-install-gc-');
  await seedRoot(root);
  const r = await runInstall(['--root', root, '--groundcontrol', artifact.file]);
  assert.equal(r.code, 0, r.stderr);
  const prefix = join(root, 'opt', 'harbor-satellite');
  const ids = await userIds(root, 'harbor-satellite');
  assert.ok(ids);
  assert.deepEqual(await modeOf(join(root, 'var', 'lib', 'harbor-groundcontrol')), { mode: 0o700, ...ids }, "the unit's StateDirectoryMode");
  assert.equal(await exists(join(root, 'var', 'lib', 'harbor-satellite')), false);
  const config = join(root, 'etc', 'harbor-satellite', 'groundcontrol.json');
  assert.equal(await readFile(config, 'utf8'), await readFile(join(prefix, 'current', 'config', 'groundcontrol.json'), 'utf8'));
  assert.deepEqual(await modeOf(config), { mode: 0o640, uid: 0, gid: ids.gid });
  const unit = join(root, 'etc', 'systemd', 'system', 'groundcontrol.service');
  assert.equal(await readFile(unit, 'utf8'), await readFile(join(prefix, 'current', 'systemd', 'groundcontrol.service'), 'utf8'));
  assert.ok(await exists(join(root, 'etc', 'systemd', 'system', 'multi-user.target.wants', 'groundcontrol.service')));
  assert.equal(await exists(join(root, 'etc', 'systemd', 'system', 'satellite.service')), false);
  const { stdout } = await run(join(prefix, 'bin', 'groundcontrol'), ['--version']);
  assert.equal(stdout.trim(), version);
  const refused = await runInstall(['--root', root, '--groundcontrol', '--board', 'jetson', artifact.file]);
  assert.match(refused.stderr, /satellite options, not for --groundcontrol/);

  assert.equal((await runInstall(['--root', root, '--uninstall', '--purge'])).code, 0);
  for (const p of ['opt/harbor-satellite', 'var/lib/harbor-groundcontrol', 'etc/harbor-satellite', 'etc/systemd/system/groundcontrol.service']) {
    assert.equal(await exists(join(root, p)), false, `${p} removed`);
  }
});

test('--uninstall keeps data and config; --purge removes them and the user', async (t) => {
  const root = await makeTempDir(t, 'hs-install-rm-');
  await seedRoot(root);
  assert.equal((await runInstall(['--root', root, '--token', TOKEN, '--ground-control', GC, artifact.file])).code, 0);
  await writeFile(join(root, 'var', 'lib', 'harbor-satellite', 'kept'), 'data');
  const rm = await runInstall(['--root', root, '--uninstall']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(await exists(join(root, 'opt', 'harbor-satellite')), false);
  assert.equal(await exists(join(root, 'etc', 'systemd', 'system', 'satellite.service')), false);
  assert.equal(await exists(join(root, 'etc', 'systemd', 'system', 'multi-user.target.wants', 'satellite.service')), false);
  assert.equal(await exists(join(root, 'usr', 'local', 'bin', 'satellite')), false);
  assert.equal(await readFile(join(root, 'var', 'lib', 'harbor-satellite', 'kept'), 'utf8'), 'data');
  assert.ok(await exists(join(root, 'etc', 'harbor-satellite', 'satellite.json')));
  assert.ok(await exists(join(root, 'etc', 'harbor-satellite', 'registration-token')));
  assert.ok(await userIds(root, 'harbor-satellite'));
  // Reinstalling over kept data and config works and keeps both.
  assert.equal((await runInstall(['--root', root, artifact.file])).code, 0);
  assert.equal(await readFile(join(root, 'var', 'lib', 'harbor-satellite', 'kept'), 'utf8'), 'data');

  const purge = await runInstall(['--root', root, '--uninstall', '--purge']);
  assert.equal(purge.code, 0, purge.stderr);
  for (const p of ['opt/harbor-satellite', 'var/lib/harbor-satellite', 'etc/harbor-satellite', 'etc/systemd/system/satellite.service']) {
    assert.equal(await exists(join(root, p)), false, `${p} removed`);
  }
  assert.equal(await userIds(root, 'harbor-satellite'), undefined);
});

test('upgrade flips current and keeps the previous release; reinstalling the old one rolls back', async (t) => {
  const work = await makeTempDir(t, 'hs-install-upgrade-');
  const top = await extract(artifact.file, join(work, 'x'));
  const next = join(work, 'x', `harbor-satellite-9.9.9-linux-x64`);
  await rename(top, next);
  await writeFile(join(next, 'VERSION'), '9.9.9\n');
  await writeSha256Sums(next);
  const nextTarball = await repack(next, join(work, 'next.tar.gz'));

  const root = join(work, 'root');
  await seedRoot(root);
  assert.equal((await runInstall(['--root', root, artifact.file])).code, 0);
  await writeFile(join(root, 'var', 'lib', 'harbor-satellite', 'kept'), 'data');
  const up = await runInstall(['--root', root, nextTarball]);
  assert.equal(up.code, 0, up.stderr);
  const prefix = join(root, 'opt', 'harbor-satellite');
  assert.equal(await readlink(join(prefix, 'current')), 'releases/9.9.9');
  assert.equal(await readlink(join(prefix, 'previous')), `releases/${version}`);
  assert.equal((await readFile(join(prefix, 'VERSION'), 'utf8')).trim(), '9.9.9');
  assert.equal(await readFile(join(root, 'var', 'lib', 'harbor-satellite', 'kept'), 'utf8'), 'data');
  const listing = await treeListing(root);
  assert.equal((await runInstall(['--root', root, nextTarball])).code, 0);
  assert.deepEqual(await treeListing(root), listing, 'idempotent after an upgrade too');

  const back = await runInstall(['--root', root, artifact.file]);
  assert.equal(back.code, 0, back.stderr);
  assert.equal(await readlink(join(prefix, 'current')), `releases/${version}`);
  assert.equal(await readlink(join(prefix, 'previous')), 'releases/9.9.9');
});

test('a corrupt, tampered, symlinked or truncated tarball is refused and nothing is installed', async (t) => {
  const work = await makeTempDir(t, 'hs-install-bad-');
  const top = await extract(artifact.file, join(work, 'x'));
  await appendFile(join(top, 'lib', 'satellite.mjs'), '\n// tampered\n');
  const tampered = await repack(top, join(work, 'tampered.tar.gz'));
  await writeSha256Sums(top);
  await writeFile(join(top, 'lib', 'extra.mjs'), 'export {};\n');
  const extra = await repack(top, join(work, 'extra.tar.gz'));
  await rm(join(top, 'lib', 'extra.mjs'));
  await symlink('/etc/passwd', join(top, 'lib', 'link'));
  await writeSha256Sums(top); // even listed, a symlink is refused
  const linked = await repack(top, join(work, 'linked.tar.gz'));
  const truncated = join(work, 'truncated.tar.gz');
  await writeFile(truncated, (await readFile(artifact.file)).subarray(0, 5_000_000));

  const cases: Array<[string, RegExp]> = [
    [tampered, /failed verification against its SHA256SUMS[\s\S]*lib\/satellite\.mjs: FAILED[\s\S]*nothing was installed/],
    [extra, /holds files SHA256SUMS does not list: lib\/extra\.mjs; nothing was installed/],
    [linked, /holds entries that are not plain files \(symlinks, devices\): lib\/link; nothing was installed/],
    [truncated, /cannot extract .*truncated\.tar\.gz[\s\S]*nothing was installed/],
  ];
  for (const [tarball, message] of cases) {
    const root = await makeTempDir(t, 'hs-install-bad-root-');
    await seedRoot(root);
    const before = await treeListing(root);
    const r = await runInstall(['--root', root, '--token', TOKEN, '--ground-control', GC, tarball]);
    assert.equal(r.code, 1, `${tarball}: ${r.stdout}`);
    assert.match(r.stderr, message);
    assert.deepEqual(await treeListing(root), before, `${tarball}: the root is untouched`);
  }
});

test('bad options are refused before anything is written', async (t) => {
  const root = await makeTempDir(t, 'hs-install-args-');
  await seedRoot(root);
  const before = await treeListing(root);
  const cases: Array<[string[], RegExp]> = [
    [['--token', TOKEN, artifact.file], /registration token needs --ground-control/],
    [['--ground-control', 'ftp://gc', artifact.file], /--ground-control must be an http\(s\) URL/],
    [['--token', 'short', '--ground-control', GC, artifact.file], /16-200 printable characters/],
    [['--token', TOKEN, '--token-file', '/etc/hostname', '--ground-control', GC, artifact.file], /not both/],
    [['--bogus', artifact.file], /unknown option --bogus/],
    [['--purge', artifact.file], /--purge only goes with --uninstall/],
    [['--prefix', 'relative/dir', artifact.file], /--prefix must be an absolute path/],
    [[join(root, 'missing.tar.gz')], /no such tarball/],
  ];
  for (const [args, message] of cases) {
    const r = await runInstall(['--root', root, ...args]);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, message);
  }
  assert.deepEqual(await treeListing(root), before);
});
