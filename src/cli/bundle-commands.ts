import { readFile } from 'node:fs/promises';
import { createBundle, importBundle } from '../bundle/index.ts';
import type { SatelliteConfig } from '../config/index.ts';
import { pino, type Logger } from 'pino';
import { storeOptions } from '../daemon/store-options.ts';
import { isSatelliteError } from '../lib/errors.ts';
import type { TrustPolicy } from '../protocol/desired-state.ts';
import { parseDesiredState } from '../protocol/desired-state.ts';
import { Store } from '../store/index.ts';
import { UpstreamClient } from '../upstream/index.ts';

import { BUNDLE_USAGE } from './usage.ts';

export { BUNDLE_USAGE };

export interface BundleArgs {
  from?: string | undefined;
  image?: string[] | undefined;
  output?: string | undefined;
  username?: string | undefined;
  'password-file'?: string | undefined;
  trust?: string | undefined;
}

export async function bundleCommand(sub: string | undefined, path: string | undefined, config: SatelliteConfig, args: BundleArgs): Promise<number> {
  // stdout carries the JSON report; log lines (warn and up unless debug) go to stderr.
  const log = pino({ name: 'satellite', level: config.log.level === 'debug' ? 'debug' : 'warn' }, pino.destination(2));
  try {
    if (sub === 'create') return await create(config, args, log);
    if (sub === 'import' && path) return await importCmd(config, path, args, log);
  } catch (err) {
    if (isSatelliteError(err)) {
      console.error(`satellite bundle ${sub}: ${err.code}: ${err.message}`);
      return 1;
    }
    throw err;
  }
  console.error(`usage:\n${BUNDLE_USAGE}`);
  return 2;
}

async function create(config: SatelliteConfig, args: BundleArgs, log: Logger): Promise<number> {
  if (!args.from || !args.output || !args.image?.length) {
    console.error(`usage:\n${BUNDLE_USAGE}`);
    return 2;
  }
  const images = args.image.map((ref) => {
    const at = ref.indexOf('@');
    const colon = ref.lastIndexOf(':');
    if (at > 0) return { repository: ref.slice(0, at), reference: ref.slice(at + 1) };
    if (colon > ref.lastIndexOf('/')) return { repository: ref.slice(0, colon), reference: ref.slice(colon + 1) };
    return { repository: ref, reference: 'latest' };
  });
  const password = args['password-file'] ? (await readFile(args['password-file'], 'utf8')).trim() : undefined;
  const source = new UpstreamClient(
    { ...config.upstream, url: args.from, ...(args.username ? { username: args.username, password: password ?? '' } : {}) },
    log.child({ module: 'upstream' }),
  );
  try {
    const report = await createBundle({ source, images, outDir: args.output, log });
    console.log(JSON.stringify({ bundle: args.output, ...report }));
  } finally {
    await source.close();
  }
  return 0;
}

async function importCmd(config: SatelliteConfig, path: string, args: BundleArgs, log: Logger): Promise<number> {
  const store = await Store.open(storeOptions(config), log.child({ module: 'store' }));
  try {
    // The policy: --trust FILE (a desired state, or its "trust" list), else the desired state in force.
    let policies: TrustPolicy[] | undefined;
    if (args.trust) {
      const doc = JSON.parse(await readFile(args.trust, 'utf8')) as unknown;
      policies = Array.isArray(doc) ? (doc as TrustPolicy[]) : parseDesiredState(doc, args.trust).trust;
    } else policies = store.syncState().desired()?.trust;
    const report = await importBundle(store, path, { policies, log });
    console.log(JSON.stringify(report));
    return report.images.some((i) => i.status === 'refused') ? 1 : 0;
  } finally {
    await store.close();
  }
}
