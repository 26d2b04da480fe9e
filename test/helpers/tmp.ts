import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defer, type Teardown } from './cleanup.ts';

export type { Teardown } from './cleanup.ts';

/** A fresh directory under os.tmpdir(), removed (rm -rf) after the test. */
export async function makeTempDir(t: Teardown, prefix = 'hs-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  defer(t, () => removeDir(dir));
  return dir;
}

/** rm -rf that tolerates files still being closed by a process that just exited. */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}
