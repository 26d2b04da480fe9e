import type { Logger } from 'pino';
import type { AddressInfo } from 'node:net';
import type { SatelliteConfig } from '../config/index.ts';
import { Store } from '../store/index.ts';
import { HtpasswdAuth, RegistryServer } from '../registry/index.ts';

/** A running satellite: parts started in order, stopped in reverse. */
export interface SatelliteRuntime {
  store: Store;
  registry: RegistryServer;
  address: AddressInfo;
  close(): Promise<void>;
}

export async function startSatellite(config: SatelliteConfig, log: Logger): Promise<SatelliteRuntime> {
  const store = await Store.open(
    {
      dataDir: config.dataDir,
      gcGraceSeconds: config.store.gcGraceSeconds,
      uploadTtlSeconds: config.store.uploadTtlSeconds,
      readChunkBytes: config.store.readChunkBytes,
      ...(config.store.indexMapSizeBytes ? { indexMapSizeBytes: config.store.indexMapSizeBytes } : {}),
    },
    log.child({ module: 'store' }),
  );
  try {
    const auth = config.registry.auth ? await HtpasswdAuth.load(config.registry.auth.htpasswd, config.registry.auth.realm) : undefined;
    const registry = new RegistryServer({ config: config.registry, store, log: log.child({ module: 'registry' }), auth });
    const address = await registry.start();
    let closing: Promise<void> | undefined;
    return {
      store,
      registry,
      address,
      close() {
        closing ??= (async () => {
          await registry.close();
          await store.close();
          log.info('satellite stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
