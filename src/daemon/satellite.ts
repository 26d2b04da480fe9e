import type { Logger } from 'pino';
import { storeOptions } from './store-options.ts';
import type { AddressInfo } from 'node:net';
import type { SatelliteConfig } from '../config/index.ts';
import { Store } from '../store/index.ts';
import { Fills } from '../fetch/index.ts';
import { HtpasswdAuth, RegistryServer } from '../registry/index.ts';
import { FileDesiredStateSource, SyncEngine, withSources } from '../sync/index.ts';
import type { Control } from '../control/index.ts';
import { VERSION } from '../version.ts';
import type { SiteMembership } from '../protocol/index.ts';
import type { PullThroughProxy } from '../proxy/index.ts';
import { proxyUpstreamFactory, upstreamFactory } from './upstream-factory.ts';
import { healthProbe } from './health.ts';
import { reportSources } from './report-sources.ts';
import { logCounters } from '../lib/json-logger.ts';
import { startAdmin } from './admin.ts';
import { blobVerifier } from './verify.ts';
import { BundleImporter } from './bundle-importer.ts';
import type { RuntimesContext } from '../runtimes/index.ts';
import { loadMetricsToken } from '../observability/auth.ts';
import type { RunningMetrics } from '../observability/index.ts';
import { RunTotals } from '../sync/index.ts';
import type { HttpsProxy } from '../https-proxy/index.ts';
import type { ImageWebhook } from '../webhook/index.ts';
import { MemoryWatchdog } from './memory/index.ts';

/** A running satellite: parts started in order, stopped in reverse. */
export interface SatelliteRuntime {
  store: Store;
  registry: RegistryServer;
  sync: SyncEngine;
  control: Control | undefined;
  proxy: PullThroughProxy | undefined;
  address: AddressInfo;
  /** Why the satellite is not healthy (registry not listening, index unreadable), else undefined. */
  liveness(): string | undefined;
  /** One line for systemd's STATUS=: where it serves and what sync has applied. */
  statusLine(): string;
  close(): Promise<void>;
}

/**
 * Start order: store (reconciled) -> control identity (registers on first boot) -> sync engine ->
 * registry -> sync runs -> control connects. Stop order is the reverse.
 */
export async function startSatellite(config: SatelliteConfig, log: Logger, signal?: AbortSignal): Promise<SatelliteRuntime> {
  const runtimesCtx: RuntimesContext = { runtimes: config.runtimes, registry: config.registry, dataDir: config.dataDir, desiredStateFile: config.sync.desiredStateFile, httpsProxy: config.httpsProxy };
  // A runtimes section that cannot produce a mirror configuration is a config error (exit 78).
  const metricsToken = await loadMetricsToken(config.metrics);
  // A domain's code (and its dependencies: mqtt, undici, prom-client, yaml/toml) is loaded only when
  // its config section turns it on: each import below is a chunk of its own in the bundle, so an
  // idle board does not keep code it never runs (docs/benchmarks.md, "Memory").
  const runtimesMod = config.runtimes.applyOnStart ? await import('../runtimes/index.ts') : undefined;
  if (runtimesMod) await runtimesMod.mirrorSpec(config.runtimes, config.registry, { desiredStateFile: config.sync.desiredStateFile, port: config.registry.listen.port || 1 });
  const store = await Store.open(storeOptions(config), log.child({ module: 'store' }));
  store.sweepUploadsEvery(config.store.uploadSweepIntervalSeconds * 1000);
  if (config.sync.bundleDir) {
    const signatures = await (await import('./bundle-keys.ts')).bundleSignatureRequirement(config, store.syncState().desired());
    const startup = await import('../bundle/startup.ts');
    await startup.importBundleAtStart(store, config.sync.bundleDir, { signatures, applier: startup.storeApplier(store, config.sync.platforms), repository: config.sync.layoutRepository, log: log.child({ module: 'bundle' }) });
  }
  let control: Control | undefined;
  let sync: SyncEngine | undefined;
  let registry: RegistryServer | undefined;
  let closePeers: (() => Promise<void>) | undefined;
  let closeAuth: (() => Promise<void> | undefined) | undefined;
  let proxy: PullThroughProxy | undefined;
  let metrics: RunningMetrics | undefined;
  let httpsProxy: HttpsProxy | undefined;
  let webhook: ImageWebhook | undefined;
  let onSite: ((site: SiteMembership | undefined) => void) | undefined;
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  let bundles: BundleImporter | undefined;
  const memory = new MemoryWatchdog({ config: config.memory, log: log.child({ module: 'memory' }) });
  try {
    if (config.control) {
      const { createControl } = await import('../control/index.ts');
      control = await createControl({
        peerUrl: config.peers?.advertiseUrl,
        onSite: (site) => onSite?.(site),
        config: config.control,
        dataDir: config.dataDir,
        log: log.child({ module: 'control' }),
        store,
        version: VERSION,
        ...(signal ? { signal } : {}),
      });
    }
    const peersMod = config.peers ? await import('./peers.ts') : undefined;
    const peers = await peersMod?.startPeers(config, control, store, log.child({ module: 'peers' }));
    const createUpstream = upstreamFactory(config.upstream, control?.identity.upstream ?? null, log.child({ module: 'upstream' }));
    // One fetch per digest in this process, whoever asks: a sync download, a peer's request, a proxy miss.
    const fills = new Fills();
    const engine = new SyncEngine({
      fills,
      config: config.sync,
      store,
      log: log.child({ module: 'sync' }),
      source: control?.source ?? (config.sync.desiredStateFile ? new FileDesiredStateSource(config.sync.desiredStateFile) : undefined),
      // Blobs: the site's peers first (the blob's owner), then the upstream.
      createUpstream: peers && peersMod ? (target, meter) => withSources(createUpstream(target, meter), [peersMod.peerSource(peers.peers, { mode: 'owner' })]) : createUpstream,
    });
    sync = engine;
    memory.onChange((shedding) => engine.holdForMemory(shedding ? 'memory above the soft limit' : undefined));
    const runTotals = new RunTotals(engine);
    // One verification for `satellite verify` and Ground Control's verify command.
    const verify = blobVerifier(store, engine);
    peers?.peers.attach({
      fetchOnRequest: (digest, sig) => engine.fetchBlobOnRequest(digest, sig),
      downloading: (digest) => engine.isDownloading(digest),
      scope: (digest) => engine.blobScope(digest),
    });
    closePeers = peers ? () => peers.peers.close() : undefined;
    if (peers) onSite = (site) => peers.peers.setSite(site);
    if (config.proxy.enabled) {
      const { PullThroughProxy } = await import('../proxy/index.ts');
      proxy = new PullThroughProxy({
        config: config.proxy,
        store,
        log: log.child({ module: 'proxy' }),
        createUpstream: await proxyUpstreamFactory(config.upstream, config.proxy, control?.identity.upstream ?? null, log.child({ module: 'upstream' })),
        pinned: () => engine.heldManifests(),
        fills,
        blobSources: peers && peersMod && config.proxy.askPeers ? peersMod.peerSource(peers.peers, { mode: 'present', waitMs: config.proxy.peerWaitMs }) : undefined,
        // Key rotation: the desired state is read at every check, the key files at start.
        signatures: { keys: await (await import('./proxy-keys.ts')).proxySignatureKeys(config.proxy.signaturePolicy), desired: () => engine.desired?.trust },
      });
    }
    const pullThrough = proxy;
    const auth = config.registry.auth ? await HtpasswdAuth.load(config.registry.auth.htpasswd, config.registry.auth) : undefined;
    closeAuth = () => auth?.close();
    const sources = { logStats: () => logCounters(log)?.stats(), version: VERSION, dataDir: config.dataDir, store, sync: engine, syncTotals: runTotals, caps: config.sync.caps, proxy: pullThrough, peers: peers?.peers, control, memory };
    if (config.metrics.enabled) metrics = await (await import('../observability/index.ts')).startMetrics(config.metrics, metricsToken, sources, log.child({ module: 'metrics' }));
    let listening = () => false;
    const reporting = control ? reportSources({ desired: () => engine.desired, syncTotals: runTotals, proxy: pullThrough, peers: peers?.peers }) : undefined;
    const observers = [metrics?.observe, reporting?.observe].filter((f) => f !== undefined);
    const server = new RegistryServer({
      onResponse: observers.length === 0 ? undefined : observers.length === 1 ? observers[0] : (r) => observers.forEach((f) => f(r)),
      health: healthProbe({ store, listening: () => listening(), images: () => engine.status().images }),
      config: config.registry,
      store,
      log: log.child({ module: 'registry' }),
      auth,
      peer: peers?.endpoint,
      proxy: pullThrough,
      shedder: memory,
      status: () => ({
        version: VERSION,
        syncTotals: runTotals.snapshot(),
        process: processStats(),
        memory: memory.status(),
        store: store.usage(),
        disk: store.disk.refresh(),
        sync: engine.status(),
        control: control?.status() ?? null,
        peers: peers?.peers.status() ?? null,
        proxy: pullThrough?.status() ?? { enabled: false },
        httpsProxy: httpsProxy?.status() ?? { enabled: false },
        webhook: webhook?.status() ?? { enabled: false },
        log: logCounters(log)?.stats() ?? null,
      }),
    });
    registry = server;
    memory.addReclaimer(() => server.trimBuffers());
    listening = () => server.listening;
    const address = await server.start();
    bundles = new BundleImporter({ config, store, sync: engine, log: log.child({ module: 'bundle' }) });
    if (config.sync.bundleDir && config.sync.bundleWatchSeconds > 0) await bundles.watch(config.sync.bundleDir, config.sync.bundleWatchSeconds);
    admin = await startAdmin({ config, store, sync: engine, memory, control, peers: peers ? () => peers.peers.status() : undefined, proxy: () => pullThrough?.status() ?? { enabled: false }, bundles, verify, log: log.child({ module: 'admin' }) });
    pullThrough?.start();
    memory.start();
    if (config.httpsProxy.enabled) {
      const { startHttpsProxy } = await import('../https-proxy/index.ts');
      httpsProxy = await startHttpsProxy(config.httpsProxy, config.dataDir, (req, res) => server.serveProxied(req, res), log.child({ module: 'https-proxy' }));
    }
    if (config.webhook.enabled) {
      const { startWebhook } = await import('../webhook/index.ts');
      webhook = await startWebhook(config.webhook, { httpsProxy: config.httpsProxy, dataDir: config.dataDir, store }, log.child({ module: 'webhook' }));
    }
    if (runtimesMod) await runtimesMod.applyRuntimesAtStart(runtimesCtx, log.child({ module: 'runtimes' }), address.port);
    await engine.start();
    // The membership in force until Ground Control's next message: the one stored with the desired state.
    if (control) onSite?.(engine.desired?.site);
    await control?.start(engine, reporting?.sources, { verify: (repair) => verify({ repair }) });
    let closing: Promise<void> | undefined;
    return {
      store,
      registry: server,
      sync: engine,
      control,
      proxy: pullThrough,
      address,
      liveness() {
        if (!server.listening) return 'registry is not listening';
        // A cheap read through the LMDB index: throws if the store is closed or broken.
        store.listRepositories({ n: 1 });
        return undefined;
      },
      statusLine() {
        const s = engine.status();
        const mem = memory.shedding ? '; memory above the soft limit: shedding blob downloads' : '';
        const sync = s.desiredGeneration === null ? 'no desired state' : `generation ${s.appliedGeneration ?? '-'}/${s.desiredGeneration} applied${s.appliedFrom === 'bundle' ? ' (bundle)' : ''}${s.running ? ', syncing' : ''}${s.paused ? `, paused: ${s.paused.reason}` : ''}`;
        return `serving on ${address.address}:${address.port}; ${sync}${mem}`;
      },
      close() {
        closing ??= (async () => {
          memory.close();
          await admin?.close();
          await bundles?.close();
          // The registry drains (503 to new requests) while downloads are checkpointed and the
          // control plane says offline: a long pull by a device does not delay the checkpoint.
          await Promise.all([
            (async () => {
              await metrics?.close();
              await httpsProxy?.close();
              await webhook?.close();
              await server.close();
              await closeAuth?.();
              await pullThrough?.close();
            })(),
            (async () => {
              await control?.close();
              await engine.close();
            })(),
          ]);
          await closePeers?.();
          await store.close();
          log.info('satellite stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    memory.close();
    await metrics?.close();
    await admin?.close();
    await bundles?.close();
    await httpsProxy?.close();
    await webhook?.close();
    await registry?.close();
    await closeAuth?.();
    await proxy?.close();
    await control?.close();
    await sync?.close();
    await closePeers?.();
    await store.close();
    throw err;
  }
}

/** Memory and uptime of this process, for the status endpoint. */
function processStats() {
  const m = process.memoryUsage();
  return { uptimeSeconds: Math.round(process.uptime()), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}
