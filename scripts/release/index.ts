// The release build: one tarball per architecture (see docs/install.md).
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { createTarball, sha256File, sourceDateEpoch } from './archive.ts';
import { REPO_ROOT } from './bundle.ts';
import { defaultCacheDir } from './packages.ts';
import { ARCHES, releaseName, releaseVersion, stageRelease, type Arch } from './stage.ts';

export { bundle, ENTRY_POINTS, EXTERNAL, REPO_ROOT, type BundleOptions, type BundleResult } from './bundle.ts';
export { createTarball, listFiles, sha256File, SUMS_FILE, writeSha256Sums } from './archive.ts';
export { defaultCacheDir, fetchPackage, runtimeClosure } from './packages.ts';
export { ARCHES, COMMANDS, NODE_FLAGS, RUNTIME_ENV, releaseName, releaseVersion, stageRelease, type Arch } from './stage.ts';
export { ReleaseError } from './errors.ts';

export interface BuildReleaseOptions {
  arch: Arch;
  /** Where the tarball goes; default <repo>/dist. */
  distDir?: string;
  /** npm pack cache; default node_modules/.cache/harbor-satellite-release ($HARBOR_RELEASE_CACHE). */
  cacheDir?: string;
  repoRoot?: string;
}

export interface ReleaseArtifact {
  arch: Arch;
  version: string;
  file: string;
  bytes: number;
  sha256: string;
}

/** Stages and packs dist/harbor-satellite-<version>-linux-<arch>.tar.gz. */
export async function buildRelease(opts: BuildReleaseOptions): Promise<ReleaseArtifact> {
  const repoRoot = opts.repoRoot ?? REPO_ROOT;
  const distDir = resolve(opts.distDir ?? join(repoRoot, 'dist'));
  const version = await releaseVersion(repoRoot);
  const name = releaseName(version, opts.arch);
  const staging = join(distDir, `.stage-${opts.arch}-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    const dir = join(staging, name);
    await stageRelease({ arch: opts.arch, dir, cacheDir: opts.cacheDir ?? defaultCacheDir(repoRoot), repoRoot });
    const file = await createTarball(dir, join(distDir, `${name}.tar.gz`), await sourceDateEpoch(repoRoot));
    const { size } = await import('node:fs/promises').then((fs) => fs.stat(file));
    return { arch: opts.arch, version, file, bytes: size, sha256: await sha256File(file) };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Every architecture, plus dist/SHA256SUMS over the tarballs. */
export async function release(opts: Omit<BuildReleaseOptions, 'arch'> & { arches?: readonly Arch[] } = {}): Promise<ReleaseArtifact[]> {
  const artifacts: ReleaseArtifact[] = [];
  for (const arch of opts.arches ?? ARCHES) artifacts.push(await buildRelease({ ...opts, arch }));
  const distDir = resolve(opts.distDir ?? join(opts.repoRoot ?? REPO_ROOT, 'dist'));
  await writeFile(join(distDir, 'SHA256SUMS'), artifacts.map((a) => `${a.sha256}  ${basename(a.file)}\n`).join(''));
  return artifacts;
}
