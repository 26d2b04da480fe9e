import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { defer, type Teardown } from '../helpers/cleanup.ts';
import { makeTempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);

export interface Tmpfs {
  dir: string;
  remount(mode: 'ro' | 'rw'): Promise<void>;
}

/**
 * Mounts a tmpfs of `bytes` on a fresh temp dir (needs root); unmounted after the test, before the
 * temp dir goes. Fails loudly when not root: a disk-full test that silently skipped would prove nothing.
 */
export async function mountTmpfs(t: Teardown, bytes: number): Promise<Tmpfs> {
  if (process.getuid?.() !== 0) throw new Error('disk tests mount a tmpfs and must run as root');
  const dir = await makeTempDir(t, 'hs-tmpfs-');
  await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
  // Lazy: a process still holding files there (a satellite being stopped) does not block the unmount.
  defer(t, () => run('umount', ['-l', dir]).catch(() => undefined));
  return {
    dir,
    remount: async (mode) => {
      await run('mount', ['-o', `remount,${mode}`, dir]);
    },
  };
}
