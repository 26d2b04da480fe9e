import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AdminClient } from '../admin/client.ts';
import { createBundle, exportFromStore, importBundle, storeApplier, type ExportRequest, type ImportReport } from '../bundle/index.ts';
import { bundleSignatureRequirement } from '../daemon/bundle-keys.ts';
import { parseByteSize } from '../lib/byte-size.ts';
import type { SatelliteConfig } from '../config/index.ts';
import { pino, type Logger } from 'pino';
import { storeOptions } from '../daemon/store-options.ts';
import { isSatelliteError, SatelliteError } from '../lib/errors.ts';
import type { TrustPolicy } from '../protocol/desired-state.ts';
import { parseDesiredState } from '../protocol/desired-state.ts';
import { Store } from '../store/index.ts';
import { splitReference } from '../oci/names.ts';
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
  'part-size'?: string | undefined;
  all?: boolean | undefined;
  key?: string | undefined;
  repository?: string | undefined;
}

/** --part-size SIZE ("100MiB", "3.9GiB", bytes); undefined: the default. */
export function partSizeArg(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = parseByteSize(text);
  if (n === undefined) throw new SatelliteError('USAGE', `--part-size must be a size such as 100MiB or 3.9GiB, not ${text}`);
  return n;
}

export async function bundleCommand(sub: string | undefined, path: string | undefined, config: SatelliteConfig, args: BundleArgs): Promise<number> {
  // stdout carries the JSON report; log lines (warn and up unless debug) go to stderr.
  const log = pino({ name: 'satellite', level: config.log.level === 'debug' ? 'debug' : 'warn' }, pino.destination(2));
  try {
    if (sub === 'create') return await create(config, args, log);
    if (sub === 'import' && path) return await importCmd(config, path, args, log);
    if (sub === 'export') return await exportCmd(config, args, log);
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
  const images = args.image.map(splitReference);
  const password = args['password-file'] ? (await readFile(args['password-file'], 'utf8')).trim() : undefined;
  const source = new UpstreamClient(
    { ...config.upstream, url: args.from, ...(args.username ? { username: args.username, password: password ?? '' } : {}) },
    log.child({ module: 'upstream' }),
  );
  try {
    const partSize = partSizeArg(args['part-size']);
    const report = await createBundle({ source, images, outDir: args.output, log, ...(partSize ? { partSize } : {}) });
    console.log(JSON.stringify({ bundle: args.output, ...report }));
  } finally {
    await source.close();
  }
  return 0;
}

async function importCmd(config: SatelliteConfig, path: string, args: BundleArgs, log: Logger): Promise<number> {
  // A running satellite imports it itself, while it serves (its store is open there, not here).
  if (config.admin.enabled && !args.trust) {
    try {
      return reportImport(await new AdminClient(config.admin.socket).importBundle(resolve(path), args.repository));
    } catch (err) {
      if (!isSatelliteError(err, 'ADMIN_UNREACHABLE')) throw err;
    }
  }
  const store = await Store.open(storeOptions(config), log.child({ module: 'store' }));
  try {
    // The policy: --trust FILE (a desired state, or its "trust" list), else the applier's (the desired state in force,
    // or the bundle's own when it is newer and signed by Ground Control).
    let policies: TrustPolicy[] | undefined;
    if (args.trust) {
      const doc = JSON.parse(await readFile(args.trust, 'utf8')) as unknown;
      policies = Array.isArray(doc) ? (doc as TrustPolicy[]) : parseDesiredState(doc, args.trust).trust;
    }
    const signatures = await bundleSignatureRequirement(config, store.syncState().desired());
    const repository = args.repository ?? config.sync.layoutRepository;
    return reportImport(await importBundle(store, path, { policies, signatures, applier: storeApplier(store, config.sync.platforms), repository, log }));
  } finally {
    await store.close();
  }
}

/**
 * `bundle export`: what this satellite holds, written as a bundle. The running satellite writes it
 * (its user needs write access to DIR and read access to --key); else the store is opened here.
 */
async function exportCmd(config: SatelliteConfig, args: BundleArgs, log: Logger): Promise<number> {
  if (!args.output || (!args.all && !args.image?.length) || (args.all && args.image?.length)) {
    console.error(`usage:\n${BUNDLE_USAGE}`);
    return 2;
  }
  const request: ExportRequest = {
    outDir: resolve(args.output),
    images: args.image ?? [],
    all: args.all === true,
    ...(args['part-size'] ? { partSize: partSizeArg(args['part-size']) } : {}),
    ...(args.key ? { keyFile: resolve(args.key) } : {}),
  };
  if (config.admin.enabled) {
    try {
      console.log(JSON.stringify({ bundle: request.outDir, ...(await new AdminClient(config.admin.socket).exportBundle(request)) }));
      return 0;
    } catch (err) {
      if (!isSatelliteError(err, 'ADMIN_UNREACHABLE')) throw err;
    }
  }
  const store = await Store.open(storeOptions(config), log.child({ module: 'store' }));
  try {
    console.log(JSON.stringify({ bundle: request.outDir, ...(await exportFromStore(store, request, log)) }));
  } finally {
    await store.close();
  }
  return 0;
}

function reportImport(report: ImportReport): number {
  console.log(JSON.stringify(report));
  return report.images.some((i) => i.status === 'refused') ? 1 : 0;
}
