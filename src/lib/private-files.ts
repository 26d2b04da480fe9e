import { chmod, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Mode of directories that hold secrets: the owner only, whatever the umask. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of files that hold secrets (LMDB files, identity, tokens, keys). */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Spread into lmdb's open() options: the file mode used when the environment files are created
 * (lmdb-js reads `permissionsMode`, default 0664 minus the umask; its typings omit it).
 */
export const LMDB_PRIVATE_OPTIONS: { permissionsMode: number } = { permissionsMode: PRIVATE_FILE_MODE };

/**
 * Creates a directory (and its parents) readable by the owner only, and tightens it when it
 * already exists: an install started by hand under umask 022 left it 0755 before. mkdir's mode is
 * filtered by the umask, so the chmod is what guarantees 0700.
 */
export async function ensurePrivateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  await chmod(path, PRIVATE_DIR_MODE);
}

/**
 * Every regular file directly in `dir` to 0600: LMDB's data.mdb and lock.mdb, keys, tokens, state
 * files an older version (or a umask 022 shell) left group- and world-readable. New LMDB files get
 * the mode from LMDB_PRIVATE_OPTIONS, other writers pass 0600 themselves.
 */
export async function tightenFiles(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) await chmod(join(dir, entry.name), PRIVATE_FILE_MODE);
  }
}
