// npm packages for a release: the per-architecture ones (Node runtime, prebuilt native bindings)
// come from the registry with `npm pack` into a cache; the pure-JS ones are copied from the
// repository's node_modules.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { ReleaseError } from './errors.ts';

const run = promisify(execFile);

export interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** Default cache for `npm pack` downloads (survives between builds and test runs). */
export function defaultCacheDir(repoRoot: string): string {
  return process.env.HARBOR_RELEASE_CACHE ?? join(repoRoot, 'node_modules', '.cache', 'harbor-satellite-release');
}

async function sha512(file: string): Promise<string> {
  const hash = createHash('sha512');
  await pipeline(createReadStream(file), hash);
  return `sha512-${hash.digest('base64')}`;
}

/**
 * `npm pack name@version` into cacheDir, once: resolves with the .tgz path. A cached file is used
 * only if it still matches the integrity npm reported when it was fetched (a truncated or edited
 * file is fetched again). `version` must be exact so the cache key means one tarball.
 */
export async function fetchPackage(name: string, version: string, cacheDir: string): Promise<string> {
  if (!/^\d+\.\d+\.\d+(-[\w.]+)?$/.test(version)) {
    throw new ReleaseError('RELEASE_VERSION_INEXACT', `${name}: need an exact version to fetch, got "${version}"`);
  }
  const file = join(cacheDir, `${name.replace('@', '').replace('/', '-')}-${version}.tgz`);
  const integrityFile = `${file}.integrity`;
  try {
    const want = (await readFile(integrityFile, 'utf8')).trim();
    if ((await sha512(file)) === want) return file;
  } catch {
    // not cached yet (or half written): fetch below
  }
  await mkdir(cacheDir, { recursive: true });
  const tmp = await mkdtemp(join(cacheDir, '.pack-'));
  try {
    let stdout: string;
    try {
      ({ stdout } = await run('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', tmp], {
        cwd: tmp,
        maxBuffer: 64 * 1024 * 1024,
        timeout: 600_000,
      }));
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new ReleaseError('RELEASE_FETCH_FAILED', `npm pack ${name}@${version} failed: ${stderr.trim() || (err as Error).message}`, { cause: err });
    }
    const [info] = JSON.parse(stdout) as Array<{ filename: string; integrity: string }>;
    if (!info) throw new ReleaseError('RELEASE_FETCH_FAILED', `npm pack ${name}@${version} reported no file`);
    const packed = join(tmp, info.filename);
    if ((await sha512(packed)) !== info.integrity) {
      throw new ReleaseError('RELEASE_FETCH_FAILED', `npm pack ${name}@${version}: file does not match integrity ${info.integrity}`);
    }
    await rename(packed, file);
    await writeFile(integrityFile, `${info.integrity}\n`);
    return file;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Extracts members of an npm tarball (paths below `package/`) into dest. */
export async function extractPackage(tgz: string, dest: string, members: string[] = []): Promise<void> {
  await mkdir(dest, { recursive: true });
  const args = ['-xzf', tgz, '-C', dest, '--strip-components=1', '--no-same-owner', ...members.map((m) => `package/${m}`)];
  try {
    await run('tar', args, { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    throw new ReleaseError('RELEASE_EXTRACT_FAILED', `cannot extract ${tgz}: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`, { cause: err });
  }
}

export async function readPackageJson(dir: string): Promise<PackageJson> {
  return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

// Optional dependencies named like `@lmdb/lmdb-linux-arm64`: one prebuilt binary per platform.
const PLATFORM_PACKAGE = /-(linux|darwin|win32|freebsd|openbsd|android|sunos|aix)-[a-z0-9]+$/;

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Node's lookup: <dir>/node_modules/<name>, then each parent dir, up to root. */
async function findPackageDir(name: string, fromDir: string, root: string): Promise<string | undefined> {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (await exists(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === dirname(dir)) return undefined;
  }
}

export interface RuntimeTree {
  /** Package dirs relative to <repo>/node_modules, e.g. "lmdb", "msgpackr/node_modules/x". */
  copied: string[];
  /** Platform packages to fetch for the target: name -> exact version. */
  platform: Map<string, string>;
}

/**
 * The production dependency closure of `roots` as installed in repoRoot/node_modules, minus the
 * per-platform binding packages, which are listed for `arch` instead (to be fetched).
 */
export async function runtimeClosure(repoRoot: string, roots: string[], arch: string): Promise<RuntimeTree> {
  const top = join(repoRoot, 'node_modules');
  const copied = new Set<string>();
  const platform = new Map<string, string>();
  const queue: Array<[string, string]> = roots.map((name) => [name, repoRoot]);
  while (queue.length > 0) {
    const [name, from] = queue.shift() as [string, string];
    const dir = await findPackageDir(name, from, repoRoot);
    if (!dir) throw new ReleaseError('RELEASE_DEPENDENCY_MISSING', `${name} (needed from ${relative(repoRoot, from) || '.'}) is not installed: run npm ci`);
    const rel = relative(top, dir);
    if (copied.has(rel)) continue;
    copied.add(rel);
    const pkg = await readPackageJson(dir);
    for (const dep of Object.keys(pkg.dependencies ?? {})) queue.push([dep, dir]);
    for (const [dep, range] of Object.entries(pkg.optionalDependencies ?? {})) {
      if (PLATFORM_PACKAGE.test(dep)) {
        if (dep.endsWith(`-linux-${arch}`)) platform.set(dep, range);
      } else if (await findPackageDir(dep, dir, repoRoot)) {
        queue.push([dep, dir]);
      }
    }
  }
  return { copied: [...copied].sort(), platform };
}

/**
 * Copies the package dirs into destNodeModules, without their nested node_modules (those are
 * listed separately) and without a local `build/` (a binding compiled for this machine would win
 * over the target's prebuilt one).
 */
export async function copyPackages(repoRoot: string, dirs: string[], destNodeModules: string): Promise<void> {
  const top = join(repoRoot, 'node_modules');
  for (const rel of dirs) {
    const src = join(top, rel);
    await cp(src, join(destNodeModules, rel), {
      recursive: true,
      dereference: true,
      filter: (path) => {
        const inner = relative(src, path).split('/')[0];
        return inner !== 'node_modules' && inner !== 'build';
      },
    });
  }
}
