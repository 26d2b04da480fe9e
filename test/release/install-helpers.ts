import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../../build.mjs';

export const INSTALL_SH = join(REPO_ROOT, 'scripts', 'install.sh');

export interface InstallRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs scripts/install.sh with /bin/sh (dash on Debian: POSIX only); never rejects. */
export function runInstall(args: string[]): Promise<InstallRun> {
  return new Promise((resolve) => {
    execFile('/bin/sh', [INSTALL_SH, ...args], { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A minimal system tree for `--root`: etc/passwd, group, shadow, gshadow (what useradd --root
 * edits) and, optionally, a device-tree model (what the installer reads to pick a board).
 */
export async function seedRoot(root: string, model?: string): Promise<void> {
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(join(root, 'etc', 'shadow'), 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n');
  await writeFile(join(root, 'etc', 'gshadow'), 'root:*::\nnogroup:*::\n');
  await chmod(join(root, 'etc', 'shadow'), 0o640);
  await chmod(join(root, 'etc', 'gshadow'), 0o640);
  if (model !== undefined) {
    await mkdir(join(root, 'proc', 'device-tree'), { recursive: true });
    await writeFile(join(root, 'proc', 'device-tree', 'model'), `${model}\0`);
  }
}

/** uid and gid of a user in root/etc/passwd, or undefined. */
export async function userIds(root: string, name: string): Promise<{ uid: number; gid: number } | undefined> {
  for (const line of (await readFile(join(root, 'etc', 'passwd'), 'utf8')).split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/**
 * One line per entry below root: path, type, mode, uid, gid and content hash or link target —
 * everything but times, so two runs that leave the same state give the same listing.
 */
export async function treeListing(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(root, rel))).sort()) {
    const relPath = rel ? `${rel}/${name}` : name;
    const path = join(root, relPath);
    const st = await lstat(path);
    const head = `${relPath} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isSymbolicLink()) out.push(`${head} -> ${await readlink(path)}`);
    else if (st.isDirectory()) {
      out.push(`${head} dir`);
      out.push(...(await treeListing(root, relPath)));
    } else out.push(`${head} ${createHash('sha256').update(await readFile(path)).digest('hex')}`);
  }
  return out;
}

/** Mode bits and owner of a path (not following a final symlink). */
export async function modeOf(path: string): Promise<{ mode: number; uid: number; gid: number }> {
  const st = await lstat(path);
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}
