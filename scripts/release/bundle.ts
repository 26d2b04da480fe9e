// esbuild: the two entry points into single ESM files for Node 24. lmdb (and its msgpackr-extract
// helper) carry native bindings: they stay external and are resolved from node_modules beside the
// bundle (the release ships them in lib/node_modules). Ground Control's web console is built beside
// them into <outdir>/console/ (browser ESM + CSS; see src/groundcontrol/console/build-options.ts).
import { build } from 'esbuild';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { consoleBuildOptions } from '../../src/groundcontrol/console/build-options.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const ENTRY_POINTS: Record<string, string> = {
  satellite: 'src/cli/satellite.ts',
  groundcontrol: 'src/cli/groundcontrol.ts',
  // The registry's password checks run in worker threads from this file (src/registry/auth.ts finds it beside satellite.mjs).
  'bcrypt-worker': 'src/registry/bcrypt-worker.ts',
};
export const EXTERNAL = ['lmdb', 'msgpackr-extract'];

export interface BundleResult {
  outdir: string;
  version: string;
  /** Output files as esbuild names them (relative to the cwd). */
  outputs: string[];
}

export interface BundleOptions {
  /**
   * Rewrite the source maps' `sources` to paths relative to the repository (`../src/cli/…`), so
   * the maps do not depend on where the build ran (release tarballs are reproducible).
   */
  portableSourceMaps?: boolean;
}

export async function bundle(outdir = 'dist/bundle', opts: BundleOptions = {}): Promise<BundleResult> {
  const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  const result = await build({
    absWorkingDir: REPO_ROOT,
    entryPoints: ENTRY_POINTS,
    outdir: resolve(REPO_ROOT, outdir),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22.19',
    minifySyntax: true,
    sourcemap: 'linked',
    external: EXTERNAL,
    define: { 'process.env.HARBOR_SATELLITE_BUNDLE': '"1"' },
    // Some dependencies are CommonJS and call require(); give the ESM bundle one.
    banner: { js: "import { createRequire as __hsCreateRequire } from 'node:module'; const require = __hsCreateRequire(import.meta.url);" },
    metafile: true,
    logLevel: 'warning',
  });
  // Ground Control's web console: static files beside the bundle (src/groundcontrol/console/assets.ts reads them).
  const ui = await build({ ...consoleBuildOptions(resolve(REPO_ROOT, outdir, 'console')), absWorkingDir: REPO_ROOT, metafile: true });
  const outputs = [...Object.keys(result.metafile.outputs), ...Object.keys(ui.metafile.outputs)];
  if (opts.portableSourceMaps) {
    for (const out of outputs.filter((f) => f.endsWith('.map'))) {
      const file = resolve(REPO_ROOT, out);
      const map = JSON.parse(await readFile(file, 'utf8')) as { sources: string[] };
      map.sources = map.sources.map((s) => `../${relative(REPO_ROOT, resolve(dirname(file), s))}`);
      await writeFile(file, JSON.stringify(map));
    }
  }
  return { outdir, version: pkg.version, outputs };
}
