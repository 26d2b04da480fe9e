// Lays out one release directory (see docs/install.md for the layout):
//   bin/ node/ lib/ systemd/ board/ config/ docs/ LICENSE VERSION install.sh SHA256SUMS
import { chmod, copyFile, cp, lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundle, EXTERNAL, REPO_ROOT } from './bundle.ts';
import { ReleaseError } from './errors.ts';
import { copyPackages, extractPackage, fetchPackage, readPackageJson, runtimeClosure } from './packages.ts';
import { writeSha256Sums } from './archive.ts';
import { COMMANDS, NODE_FLAGS, RUNTIME_ENV, wrapperEnvLines, type Command } from './runtime.ts';

export { COMMANDS, NODE_FLAGS, RUNTIME_ENV } from './runtime.ts';

/** Target architectures: Node's `process.arch` names, as in the npm packages node-linux-<arch>. */
export const ARCHES = ['arm64', 'x64'] as const;
export type Arch = (typeof ARCHES)[number];

/** Directories copied verbatim from the repository into the release. */
export const SHIPPED_DIRS = ['systemd', 'board', 'config', 'docs'] as const;

export function releaseName(version: string, arch: Arch): string {
  return `harbor-satellite-${version}-linux-${arch}`;
}

/** package.json's version, checked against src/version.ts (what `--version` prints). */
export async function releaseVersion(repoRoot = REPO_ROOT): Promise<string> {
  const { version } = await readPackageJson(repoRoot);
  const source = await readFile(join(repoRoot, 'src', 'version.ts'), 'utf8');
  const embedded = /export const VERSION = '([^']+)'/.exec(source)?.[1];
  if (embedded !== version) {
    throw new ReleaseError(
      'RELEASE_VERSION_MISMATCH',
      `src/version.ts says ${embedded ?? '(no VERSION)'} but package.json says ${version}: make them equal before a release`,
    );
  }
  return version;
}

/** The Node version the project pins (devDependency `node`, as installed). */
export async function nodeVersion(repoRoot = REPO_ROOT): Promise<string> {
  return (await readPackageJson(join(repoRoot, 'node_modules', 'node'))).version;
}

/** bin/<command>: wrapper.sh with the command's entry, flags and environment (runtime.ts). */
export async function wrapper(command: Command): Promise<string> {
  const template = await readFile(join(import.meta.dirname, 'wrapper.sh'), 'utf8');
  return template
    .replaceAll('@ENTRY@', COMMANDS[command])
    .replaceAll('@NODE_FLAGS@', NODE_FLAGS[command].map((f) => `${f} `).join(''))
    .replace('@RUNTIME_ENV@\n', wrapperEnvLines(RUNTIME_ENV[command]));
}

export interface StageOptions {
  arch: Arch;
  /** The release directory to create (must not exist). */
  dir: string;
  cacheDir: string;
  repoRoot?: string;
}

/**
 * Builds the release tree for `arch` in opts.dir: bundles, the Node runtime and native bindings
 * for that architecture (npm pack), the pure-JS runtime dependencies, wrappers, units, profiles,
 * configs, LICENSE, VERSION and SHA256SUMS. Modes are normalised (0755 dirs and executables,
 * 0644 the rest); the tree holds no symlinks.
 */
export async function stageRelease(opts: StageOptions): Promise<{ version: string; dir: string }> {
  const repoRoot = opts.repoRoot ?? REPO_ROOT;
  if (!ARCHES.includes(opts.arch)) throw new ReleaseError('RELEASE_ARCH_UNKNOWN', `unknown arch ${String(opts.arch)} (have ${ARCHES.join(', ')})`);
  const version = await releaseVersion(repoRoot);
  const { dir, arch, cacheDir } = opts;
  await mkdir(dir, { recursive: false });

  // Node runtime: only the binary and its licence (no headers, man pages or npm).
  const nodeTgz = await fetchPackage(`node-linux-${arch}`, await nodeVersion(repoRoot), cacheDir);
  await extractPackage(nodeTgz, join(dir, 'node'), ['bin/node', 'LICENSE']);

  // Bundles, then the externals' runtime tree with this architecture's prebuilt bindings.
  const lib = join(dir, 'lib');
  await bundle(lib, { portableSourceMaps: true });
  const tree = await runtimeClosure(repoRoot, EXTERNAL, arch);
  await copyPackages(repoRoot, tree.copied, join(lib, 'node_modules'));
  for (const [name, version] of tree.platform) {
    const dest = join(lib, 'node_modules', name);
    await extractPackage(await fetchPackage(name, version, cacheDir), dest);
    await pruneBindings(dest);
  }

  await mkdir(join(dir, 'bin'));
  for (const command of Object.keys(COMMANDS) as Command[]) await writeFile(join(dir, 'bin', command), await wrapper(command));
  for (const sub of SHIPPED_DIRS) await cp(join(repoRoot, sub), join(dir, sub), { recursive: true });
  await copyFile(join(repoRoot, 'LICENSE'), join(dir, 'LICENSE'));
  await copyFile(join(repoRoot, 'scripts', 'install.sh'), join(dir, 'install.sh'));
  await writeFile(join(dir, 'VERSION'), `${version}\n`);
  await normaliseModes(dir);
  await writeSha256Sums(dir);
  return { version, dir };
}

// A platform package carries one binding per Node ABI and libc; the bundled Node 24 on glibc loads
// the N-API glibc one (node-gyp-build prefers an exact ABI match, which these packages lack for 24).
async function pruneBindings(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (/^node\.abi\d+\./.test(name) || /\.musl\.node$/.test(name)) await rm(join(dir, name));
  }
}

const EXECUTABLE = /^(bin\/[^/]+|node\/bin\/node|install\.sh|.*\.node)$/;

async function normaliseModes(root: string, rel = ''): Promise<void> {
  for (const entry of await readdir(join(root, rel), { withFileTypes: true })) {
    const relPath = rel ? `${rel}/${entry.name}` : entry.name;
    const path = join(root, relPath);
    if (entry.isDirectory()) {
      await chmod(path, 0o755);
      await normaliseModes(root, relPath);
    } else if (entry.isFile()) {
      await chmod(path, EXECUTABLE.test(relPath) ? 0o755 : 0o644);
    } else {
      const kind = (await lstat(path)).isSymbolicLink() ? 'a symlink' : 'not a regular file';
      throw new ReleaseError('RELEASE_LAYOUT_INVALID', `${relPath} is ${kind}: a release holds only files and directories`);
    }
  }
}
