// esbuild: the two entry points into single ESM files for Node 24. lmdb (and its msgpackr-extract
// helper) carry native bindings: they stay external and are resolved from node_modules beside the
// bundle (the release ships them in lib/node_modules). Ground Control's web console is built beside
// them into <outdir>/console/ (browser ESM + CSS; see src/groundcontrol/console/build-options.ts).
import { build } from 'esbuild';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { precompiledValidators } from './validators.ts';
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
  const common = {
    absWorkingDir: REPO_ROOT,
    outdir: resolve(REPO_ROOT, outdir),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    // Code behind a dynamic import() (a domain its config may leave off: control/mqtt, proxy,
    // peers, metrics, runtimes, upstream/undici, the CLI commands) goes into chunks beside the
    // entry points and is read only when used: the idle RSS of a default satellite drops by the
    // code it never runs (docs/benchmarks.md, "Memory").
    splitting: true,
    chunkNames: '[name]-[hash]',
    target: 'node22.19',
    minifySyntax: true,
    sourcemap: 'linked',
    external: EXTERNAL,
    define: { 'process.env.HARBOR_SATELLITE_BUNDLE': '"1"' },
    // Some dependencies are CommonJS and call require(); give the ESM bundle one.
    banner: { js: "import { createRequire as __hsCreateRequire } from 'node:module'; const require = __hsCreateRequire(import.meta.url);" },
    metafile: true,
    logLevel: 'warning',
  } as const;
  // Chunks of an earlier build into the same directory (content-hashed names) would pile up.
  const out = resolve(REPO_ROOT, outdir);
  const stale = (await readdir(out).catch(() => [] as string[])).filter((f) => /-[A-Z0-9]{8}\.mjs(\.map)?$/.test(f));
  await Promise.all(stale.map((f) => rm(join(out, f), { force: true })));
  const { groundcontrol, ...satellite } = ENTRY_POINTS;
  const results = await Promise.all([
    // The satellite validates with validators generated here (scripts/release/validators.ts): no ajv at run time.
    build({ ...common, entryPoints: satellite, plugins: [precompiledValidators(REPO_ROOT)] }),
    // Ground Control is central, not bound by a board's memory: it compiles its schemas with ajv.
    build({ ...common, entryPoints: { groundcontrol: groundcontrol! } }),
  ]);
  // Ground Control's web console: static files beside the bundle (src/groundcontrol/console/assets.ts reads them).
  const ui = await build({ ...consoleBuildOptions(resolve(REPO_ROOT, outdir, 'console')), absWorkingDir: REPO_ROOT, metafile: true });
  const outputs = [...new Set([...results, ui].flatMap((r) => Object.keys(r.metafile.outputs)))];
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
