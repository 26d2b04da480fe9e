import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../lib/errors.ts';
import { unlinkIfExists } from '../lib/fs-atomic.ts';
import { RuntimeErrorCode, runtimeError } from './errors.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/**
 * Runs fn holding <stateDir>/lock (our pid inside), so `runtime apply` and a daemon applying at
 * start never interleave their writes. A lock left by a dead process is taken over.
 */
export async function withStateLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'lock');
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (attempt > 0 || (Number.isInteger(pid) && pid > 0 && alive(pid))) {
        throw runtimeError(RuntimeErrorCode.busy, `another satellite (pid ${pid || 'unknown'}) is changing runtime configuration: ${file}`);
      }
      await unlinkIfExists(file); // its owner is gone
    }
  }
  try {
    return await fn();
  } finally {
    await unlinkIfExists(file);
  }
}
