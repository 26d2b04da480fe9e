import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, readdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { buildRelease, type Arch, type ReleaseArtifact } from '../../build.mjs';
import { requireBinary } from '../helpers/bin.ts';
import { removeDir } from '../helpers/tmp.ts';

export const run = promisify(execFile);

/** Builds the release tarball for `arch` into a fresh dir under os.tmpdir(); the caller removes `dir`. */
export async function buildTestRelease(arch: Arch): Promise<ReleaseArtifact & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), `hs-release-${arch}-`));
  try {
    return { ...(await buildRelease({ arch, distDir: dir })), dir };
  } catch (err) {
    await removeDir(dir);
    throw err;
  }
}

/** Extracts a tarball into `into` and returns the release's top directory. */
export async function extract(tarball: string, into: string): Promise<string> {
  await mkdir(into, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', into]);
  const entries = await readdir(into);
  if (entries.length !== 1) throw new Error(`expected one top directory in ${tarball}, got ${entries.join(', ')}`);
  return join(into, entries[0] as string);
}

/** Packs `topDir` (as its own top directory) quickly (gzip -1), for tests that edit a release. */
export async function repack(topDir: string, outFile: string): Promise<string> {
  await run('tar', ['-C', dirname(topDir), '-I', 'gzip -1', '-cf', outFile, topDir.split('/').pop() as string]);
  return outFile;
}

/**
 * A PATH with only the named tools (symlinks into a temp dir), so no system `node` is reachable.
 * Returns the directory; the caller removes it.
 */
export async function toolsOnlyPath(dir: string, tools: string[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const tool of tools) await symlink(requireBinary(tool), join(dir, tool));
  return dir;
}

/** True when some ancestor of `dir` (or dir itself) holds a node_modules directory. */
export async function nodeModulesAbove(dir: string): Promise<string | undefined> {
  for (let d = dir; ; d = dirname(d)) {
    const entries = await readdir(d).catch(() => [] as string[]);
    if (entries.includes('node_modules')) return join(d, 'node_modules');
    if (d === dirname(d)) return undefined;
  }
}

/** ELF e_machine of a binary: 62 = x86-64, 183 = AArch64. */
export async function elfMachine(file: string): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(20);
    await fh.read(buf, 0, 20, 0);
    if (buf.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
    return buf.readUInt16LE(18);
  } finally {
    await fh.close();
  }
}
export const ELF_MACHINE = { x64: 62, arm64: 183 } as const;

/** A satellite config for a release run: loopback, port 0, data in dataDir, anonymous pushes allowed (the tests push). */
export async function writeTestConfig(file: string, dataDir: string): Promise<void> {
  await writeFile(file, JSON.stringify({ dataDir, log: { level: 'info' }, registry: { listen: { host: '127.0.0.1', port: 0 }, anonymousPush: true } }));
}

/** The port from a `"msg":"registry listening"` log line. */
export function listeningPort(line: string): number {
  const port = Number(/"port":(\d+)/.exec(line)?.[1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in ${line}`);
  return port;
}
