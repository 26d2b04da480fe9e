#!/usr/bin/env node
// Bundles the entry points with esbuild and builds the release tarballs.
//   node build.mjs                     -> dist/bundle/satellite.mjs, dist/bundle/groundcontrol.mjs
//   node build.mjs release [--arch A]  -> dist/harbor-satellite-<version>-linux-{arm64,x64}.tar.gz
// The code lives in scripts/release/ (bundle.ts: esbuild; stage.ts: the tree; archive.ts: tar).
import { parseArgs } from 'node:util';
import { ARCHES, bundle, release } from './scripts/release/index.ts';

export * from './scripts/release/index.ts';

if (import.meta.url === `file://${process.argv[1]}`) {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { arch: { type: 'string', multiple: true } } });
  if (positionals[0] === 'release') {
    const arches = values.arch ?? ARCHES;
    for (const arch of arches) {
      if (!ARCHES.includes(arch)) {
        console.error(`build.mjs: unknown --arch ${arch} (have ${ARCHES.join(', ')})`);
        process.exit(2);
      }
    }
    try {
      for (const a of await release({ arches })) {
        console.log(`${a.file}  ${(a.bytes / 1048576).toFixed(1)} MiB  sha256:${a.sha256}`);
      }
    } catch (err) {
      console.error(`build.mjs: ${err.code ? `${err.code}: ` : ''}${err.message}`);
      process.exit(1);
    }
  } else if (positionals.length === 0) {
    const { outputs } = await bundle();
    for (const file of outputs) console.log(file);
  } else {
    console.error('usage: node build.mjs [release [--arch arm64|x64]...]');
    process.exit(2);
  }
}
