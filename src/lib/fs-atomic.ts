import { open, rename, mkdir, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode } from './errors.ts';

/** fsync a directory so a rename or unlink in it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Renames an fsync'ed file into place and makes the new name durable. */
export async function durableRename(from: string, to: string): Promise<void> {
  const dir = dirname(to);
  await mkdir(dir, { recursive: true });
  await rename(from, to);
  await fsyncDir(dir);
}

/** Writes small data (a config, a token) atomically: temp file, fsync, rename. */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await durableRename(tmp, path);
}

export async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** A file's size, or undefined when it does not exist. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}
