#!/usr/bin/env node
// Bundles the entry points with esbuild into single ESM files for Node 24.
//   node build.mjs            -> dist/bundle/satellite.mjs, dist/bundle/groundcontrol.mjs
// lmdb (and its msgpackr-extract helper) carry native bindings: they stay external and are
// resolved from node_modules beside the bundle (the release step ships them next to it).
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';

const pkg = JSON.parse(await readFile(new URL('./package.json', import.meta.url), 'utf8'));

export const ENTRY_POINTS = { satellite: 'src/cli/satellite.ts', groundcontrol: 'src/cli/groundcontrol.ts' };
export const EXTERNAL = ['lmdb', 'msgpackr-extract'];

export async function bundle(outdir = 'dist/bundle') {
  const result = await build({
    entryPoints: ENTRY_POINTS,
    outdir,
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
  return { outdir, version: pkg.version, outputs: Object.keys(result.metafile.outputs) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { outputs } = await bundle();
  for (const file of outputs) console.log(file);
}
