import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defer } from '../helpers/cleanup.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { mountTmpfs } from './tmpfs.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** Runs index-fault-child.ts; its steps as an object. */
async function child(mode: 'full' | 'read-only', dir: string, arg: string): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [join(import.meta.dirname, 'index-fault-child.ts'), mode, dir, arg], { timeout: 60_000 });
  const steps: Record<string, unknown> = {};
  for (const line of stdout.split('\n').filter(Boolean)) {
    const { step, value } = JSON.parse(line) as { step: string; value: unknown };
    steps[step] = value;
  }
  return steps;
}

test('the LMDB index on a full disk: a write that cannot grow the map is DISK_FULL, reads go on, writes work again once space is freed', { timeout: 120_000 }, async (t) => {
  const fs = await mountTmpfs(t, 8 * MiB);
  const s = await child('full', fs.dir, String(16 * MiB));
  assert.equal(s.done, true, JSON.stringify(s));
  assert.equal(s.indexWrite, 'DISK_FULL');
  assert.equal(s.ingest, 'DISK_FULL');
  assert.equal(s.readBlob, 'kept through the fault');
  assert.equal(s.readIndex, 'kept through the fault'.length);
  assert.equal(s.indexWriteAfterFree, 'ok');
  t.diagnostic(`stray lmdb-js rejections logged, not fatal: ${String(s.strays)}`);
});

test('the index on a filesystem the kernel turned read-only (ext4 errors=remount-ro): reads go on, writes are STORE_READ_ONLY, nothing crashes', { timeout: 120_000 }, async (t) => {
  if (process.getuid?.() !== 0) throw new Error('needs root (loop mount)');
  const dir = await makeTempDir(t, 'hs-ext4-');
  const image = join(dir, 'disk.img');
  const mnt = join(dir, 'mnt');
  await run('truncate', ['-s', '64M', image]);
  await run('mkfs.ext4', ['-q', '-F', image]);
  await run('mkdir', [mnt]);
  await run('mount', ['-o', 'loop,errors=remount-ro', image, mnt]);
  defer(t, () => run('umount', ['-l', mnt]).catch(() => undefined));
  const device = (await run('findmnt', ['-n', '-o', 'SOURCE', mnt])).stdout.trim().split('/').pop()!;
  const s = await child('read-only', mnt, device);
  assert.equal(s.done, true, JSON.stringify(s));
  assert.equal(s.indexWrite, 'STORE_READ_ONLY');
  assert.equal(s.ingest, 'STORE_READ_ONLY');
  assert.equal(s.upload, 'STORE_READ_ONLY');
  // access(2) still says writable on an emergency read-only ext4: the failed write decides.
  assert.equal(s.condition, 'read-only');
  assert.equal(s.readBlob, 'kept through the fault');
  assert.equal(s.readIndex, 'kept through the fault'.length);
  assert.equal(s.readMeta, 'x');
  assert.equal(s.probeLeft, 0);
});
