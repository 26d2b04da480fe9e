import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

// Debian puts daemons (mosquitto) in sbin, which a non-login PATH often lacks.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * Absolute path of an executable test peer, or throws: a missing peer fails the test, never skips it.
 */
export function requireBinary(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  throw new Error(`missing test peer ${name}: run bash scripts/install-test-peers.sh`);
}
