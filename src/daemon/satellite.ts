import type { Logger } from 'pino';
import type { AddressInfo } from 'node:net';
import type { SatelliteConfig } from '../config/index.ts';
import { Store } from '../store/index.ts';
import { HtpasswdAuth, RegistryServer } from '../registry/index.ts';
import { FileDesiredStateSource, SyncEngine, type UpstreamTarget } from '../sync/index.ts';
import { UpstreamClient } from '../upstream/index.ts';
import { VERSION } from '../version.ts';

/** A running satellite: parts started in order, stopped in reverse. */
export interface SatelliteRuntime {
  store: Store;
  registry: RegistryServer;
  sync: SyncEngine;
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
  const upstreamLog = log.child({ module: 'upstream' });
  const sync = new SyncEngine({
    config: config.sync,
    store,
    log: log.child({ module: 'sync' }),
    source: config.sync.desiredStateFile ? new FileDesiredStateSource(config.sync.desiredStateFile) : undefined,
    // Credentials in the desired state win; the config's are the fallback (e.g. a Harbor robot account).
    createUpstream: (target: UpstreamTarget, meter) =>
      new UpstreamClient(
        {
          ...config.upstream,
          url: target.url,
          ...(target.username !== undefined ? { username: target.username, password: target.password ?? '' } : {}),
        },
        upstreamLog,
        { meter },
      ),
  });
  let registry: RegistryServer | undefined;
  try {
    const auth = config.registry.auth ? await HtpasswdAuth.load(config.registry.auth.htpasswd, config.registry.auth.realm) : undefined;
    registry = new RegistryServer({
      config: config.registry,
      store,
      log: log.child({ module: 'registry' }),
      auth,
      status: () => ({ version: VERSION, store: store.usage(), sync: sync.status() }),
    });
    const address = await registry.start();
    await sync.start();
    let closing: Promise<void> | undefined;
    const server = registry;
    return {
      store,
      registry: server,
      sync,
      address,
      close() {
        closing ??= (async () => {
          await server.close();
          await sync.close();
          await store.close();
          log.info('satellite stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    await registry?.close();
    await sync.close();
    await store.close();
    throw err;
  }
}
