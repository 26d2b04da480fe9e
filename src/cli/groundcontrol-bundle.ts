import { join } from 'node:path';
import { pino } from 'pino';
import { createBundle } from '../bundle/index.ts';
import type { GroundControlConfig } from '../groundcontrol/index.ts';
import { desiredForBundle, loadBundleKey, openGcDb } from '../groundcontrol/index.ts';
import { isSatelliteError } from '../lib/errors.ts';
import { UPSTREAM_DEFAULTS } from '../upstream/config-schema.ts';
import { UpstreamClient } from '../upstream/index.ts';
import { partSizeArg } from './bundle-commands.ts';


export interface GcBundleArgs {
  satellite?: string | undefined;
  group?: string | undefined;
  output?: string | undefined;
  'part-size'?: string | undefined;
}

/**
 * `groundcontrol bundle ...`: runs on Ground Control's host as its user (it reads the data dir: the
 * database, the upstream credentials in the config, and the 0600 signing key). Exit 0, 1 (error), 2 (usage).
 */
export async function gcBundleCommand(sub: string | undefined, config: GroundControlConfig, args: GcBundleArgs): Promise<number> {
  // Read, never created here: the CLI may run as another user (root) than the service that owns the key.
  const key = await loadBundleKey(config.dataDir, { create: false }).catch((err: unknown) => err as Error);
  if (key instanceof Error) {
    console.error(`groundcontrol bundle: ${key.message}`);
    return 1;
  }
  if (sub === 'key') {
    process.stdout.write(key.publicKeyPem);
    return 0;
  }
  if (sub !== 'create' || !args.output || (args.satellite === undefined) === (args.group === undefined)) {
    console.error('usage: groundcontrol bundle create --satellite ID | --group NAME -o DIR [--part-size SIZE]');
    return 2;
  }
  const log = pino({ name: 'groundcontrol', level: config.log.level === 'debug' ? 'debug' : 'warn' }, pino.destination(2));
  try {
    if (!config.upstream) throw new Error('Ground Control has no upstream configured: nothing to bundle from');
    const partSize = partSizeArg(args['part-size']);
    const db = openGcDb(join(config.dataDir, 'db'));
    let desired;
    try {
      desired = desiredForBundle(db, config.upstream, args.satellite !== undefined ? { satellite: args.satellite } : { group: args.group! });
    } finally {
      await db.root.close();
    }
    const images = desired.images.flatMap((img) =>
      [...(img.tags ?? []), ...(img.digests ?? [])].map((reference) => ({ repository: img.repository, reference, platforms: img.platforms ?? desired.platforms })),
    );
    const source = new UpstreamClient({ ...UPSTREAM_DEFAULTS, ...config.upstream }, log.child({ module: 'upstream' }));
    try {
      const report = await createBundle({
        source,
        images,
        outDir: args.output,
        log,
        signer: key,
        desired,
        createdBy: 'groundcontrol',
        ...(partSize ? { partSize } : {}),
      });
      console.log(JSON.stringify({ bundle: args.output, generation: desired.generation, ...report }));
    } finally {
      await source.close();
    }
    return 0;
  } catch (err) {
    console.error(`groundcontrol bundle ${sub}: ${isSatelliteError(err) ? `${err.code}: ` : ''}${(err as Error).message}`);
    return 1;
  }
}
