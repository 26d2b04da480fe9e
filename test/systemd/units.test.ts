import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/satellite.ts';
import { makeTempDir, type Teardown } from '../helpers/tmp.ts';

const run = promisify(execFile);
const UNITS = ['satellite.service', 'groundcontrol.service'];
// Debian keeps the distribution's units in /lib/systemd/system (merged /usr: the same directory).
const SYSTEM_UNITS = '/lib/systemd/system';

/**
 * A root for `systemd-analyze verify --root`: the distribution's units (sysinit.target & co.),
 * ours in /etc/systemd/system, and executables at the paths ExecStart names. The unit text
 * verified is the shipped file, byte for byte.
 */
async function makeRoot(t: Teardown, units: Record<string, string>): Promise<string> {
  const root = await makeTempDir(t, 'hs-units-');
  await mkdir(join(root, 'usr/lib/systemd'), { recursive: true });
  await cp(SYSTEM_UNITS, join(root, 'usr/lib/systemd/system'), { recursive: true, dereference: false, verbatimSymlinks: true });
  await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
  await mkdir(join(root, 'opt/harbor-satellite/bin'), { recursive: true });
  for (const bin of ['satellite', 'groundcontrol']) {
    await writeFile(join(root, 'opt/harbor-satellite/bin', bin), '#!/bin/sh\nexit 0\n');
    await chmod(join(root, 'opt/harbor-satellite/bin', bin), 0o755);
  }
  for (const [name, text] of Object.entries(units)) await writeFile(join(root, 'etc/systemd/system', name), text);
  return root;
}

async function verify(root: string, unit: string): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run('systemd-analyze', ['verify', `--root=${root}`, unit]);
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stderr: e.stderr ?? String(err) };
  }
}

test('systemd-analyze verify passes on both shipped units with no warning', async (t) => {
  const { stdout } = await run('systemd-analyze', ['--version']);
  t.diagnostic(stdout.split('\n')[0]!);
  const texts = Object.fromEntries(await Promise.all(UNITS.map(async (u) => [u, await readFile(join(REPO_ROOT, 'systemd', u), 'utf8')] as const)));
  const root = await makeRoot(t, texts);
  for (const unit of UNITS) {
    const result = await verify(root, unit);
    assert.equal(result.code, 0, `${unit}: ${result.stderr}`);
    // Unknown keys are only warnings (exit 0): any output at all fails the test.
    assert.equal(result.stderr.trim(), '', `${unit}: ${result.stderr}`);
  }
});

test('the check can fail: an unknown key or a missing ExecStart binary is reported', async (t) => {
  const text = await readFile(join(REPO_ROOT, 'systemd', 'satellite.service'), 'utf8');
  const root = await makeRoot(t, {
    'typo.service': text.replace('RestartSec=10s', 'RestartSec=10s\nRestartSteps=5'),
    'nobin.service': text.replace('/opt/harbor-satellite/bin/satellite', '/opt/harbor-satellite/bin/missing'),
  });
  const typo = await verify(root, 'typo.service');
  assert.match(typo.stderr, /Unknown key .?RestartSteps/);
  const nobin = await verify(root, 'nobin.service');
  assert.notEqual(nobin.code, 0);
  assert.match(nobin.stderr, /missing is not executable/);
});

test('the units carry the settings the daemon relies on', async () => {
  for (const unit of UNITS) {
    const text = await readFile(join(REPO_ROOT, 'systemd', unit), 'utf8');
    for (const line of ['Type=notify', 'NotifyAccess=all', 'RestartPreventExitStatus=78', 'Restart=on-failure', 'ProtectSystem=strict', 'NoNewPrivileges=true', 'User=harbor-satellite', 'WantedBy=multi-user.target', 'After=network-online.target', 'Wants=network-online.target']) {
      assert.ok(text.split('\n').includes(line), `${unit} lacks ${line}`);
    }
    assert.match(text, /^WatchdogSec=\d+s$/m);
    assert.match(text, /^MemoryMax=\d+M$/m);
  }
  const sat = await readFile(join(REPO_ROOT, 'systemd', 'satellite.service'), 'utf8');
  assert.match(sat, /^ExecStart=\/opt\/harbor-satellite\/bin\/satellite serve --config \/etc\/harbor-satellite\/satellite\.json$/m);
  assert.match(sat, /^StateDirectory=harbor-satellite$/m);
  // The in-process shutdown deadline (25 s, src/cli/satellite.ts) must fit in TimeoutStopSec.
  assert.ok(Number(/^TimeoutStopSec=(\d+)s$/m.exec(sat)?.[1]) > 25);
  const gc = await readFile(join(REPO_ROOT, 'systemd', 'groundcontrol.service'), 'utf8');
  assert.match(gc, /^ExecStart=\/opt\/harbor-satellite\/bin\/groundcontrol serve --config \/etc\/harbor-satellite\/groundcontrol\.json$/m);
  assert.match(gc, /^StateDirectory=harbor-groundcontrol$/m);
});

test('memory: every board profile sheds below MemoryHigh, and MemoryHigh is below MemoryMax', async () => {
  const unit = await readFile(join(REPO_ROOT, 'systemd', 'satellite.service'), 'utf8');
  const mib = (key: string) => Number(new RegExp(`^${key}=(\\d+)M$`, 'm').exec(unit)?.[1]) * 1024 * 1024;
  const high = mib('MemoryHigh');
  const max = mib('MemoryMax');
  assert.ok(high > 0 && max > high, `MemoryHigh ${high} < MemoryMax ${max}`);
  for (const board of ['raspberry-pi', 'jetson', 'generic-x86']) {
    const profile = JSON.parse(await readFile(join(REPO_ROOT, 'board', `${board}.json`), 'utf8')) as { memory?: { softLimitBytes?: number; resumeBytes?: number } };
    const soft = profile.memory?.softLimitBytes ?? 0;
    const resume = profile.memory?.resumeBytes ?? 0;
    assert.ok(soft > 0, `${board} sets memory.softLimitBytes`);
    assert.ok(resume > 0 && resume < soft, `${board}: resume ${resume} below soft ${soft}`);
    // The watchdog must act before the kernel throttles (MemoryHigh) or kills (MemoryMax).
    assert.ok(soft < high, `${board}: soft limit ${soft} below MemoryHigh ${high}`);
  }
  // A Pi leaves room for the device's own workloads: its watchdog acts at the smallest figure.
  const pi = JSON.parse(await readFile(join(REPO_ROOT, 'board', 'raspberry-pi.json'), 'utf8')) as { memory: { softLimitBytes: number } };
  assert.ok(pi.memory.softLimitBytes <= 128 * 1024 * 1024);
});
