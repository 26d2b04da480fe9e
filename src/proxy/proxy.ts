import type { Logger } from 'pino';
import { isSatelliteError } from '../lib/errors.ts';
import type { MissHandler, ProxiedBlob } from '../registry/index.ts';
import { isRepositoryName } from '../oci/names.ts';
import { mirrorPrefix, type ProxyConfig } from './config-schema.ts';
import { ProxyErrorCode, proxyError } from './errors.ts';
import { evictBytes, evictToQuota } from './eviction.ts';
import { isDiskError } from '../store/index.ts';
import { abortable, ManifestCache } from './manifest-cache.ts';
import { Fills, type BlobSource, type Fill } from '../fetch/index.ts';
import { proxyPolicy, proxySources } from './fill-policy.ts';
import type { ProxyStore, ProxyUpstream } from './ports.ts';
import { newCounters, type ProxyCounters, type ProxyStatus } from './stats.ts';

export interface UpstreamTarget {
  url: string;
  username?: string;
  password?: string;
}

export interface PullThroughProxyOptions {
  config: ProxyConfig;
  store: ProxyStore;
  log: Logger;
  /** Builds an upstream client; meter sees every body byte read from it. */
  createUpstream: (target: UpstreamTarget, meter: (bytes: number) => void) => ProxyUpstream;
  /** Manifest digests the desired state holds (sync): never evicted. */
  pinned: () => Set<string>;
  /** Asked for a missing blob before the upstream (the site's peers), when set. */
  blobSources?: BlobSource | undefined;
  /** The blob fetches in flight in this process, shared with sync (one fetch per digest). */
  fills?: Fills | undefined;
}

/** One upstream: the default one (store names as requested) or a mirror (store names prefixed). */
interface Route {
  url: string;
  namespace: string | undefined;
  /** Store prefix (mirrors only): `<prefix>/<repository>`. */
  prefix: string | undefined;
  upstream: ProxyUpstream;
  manifests: ManifestCache;
}

/** Where a request goes: its route, the repository in the store and at the upstream. */
interface Resolved {
  route: Route;
  repo: string;
  upstreamRepo: string;
}

/**
 * Pull-through cache: the registry asks it on a manifest or blob miss. Blobs stream to every
 * client from one upstream fetch while they are written to the store; manifests and tags are
 * cached with a TTL; least recently used cached images are evicted past the quota.
 */
export class PullThroughProxy implements MissHandler {
  readonly #config: ProxyConfig;
  readonly #store: ProxyStore;
  readonly #log: Logger;
  readonly #default: Route | undefined;
  readonly #mirrors: Route[];
  readonly #pinned: () => Set<string>;
  readonly #blobSources: BlobSource | undefined;
  readonly #counters: ProxyCounters = newCounters();
  readonly #fills: Fills;
  /** Fills this proxy started (stopped at close; the status's inFlight). */
  readonly #mine = new Set<Fill>();
  #fetching = 0;
  #timer: NodeJS.Timeout | undefined;
  #evicting: Promise<void> | undefined;
  #evictAgain = false;
  #closed = false;

  constructor(opts: PullThroughProxyOptions) {
    this.#config = opts.config;
    this.#store = opts.store;
    this.#log = opts.log;
    this.#pinned = opts.pinned;
    this.#blobSources = opts.blobSources;
    this.#fills = opts.fills ?? new Fills();
    const meter = (n: number) => {
      this.#counters.upstreamBytes += n;
    };
    const route = (target: UpstreamTarget, namespace: string | undefined, prefix: string | undefined): Route => {
      const upstream = opts.createUpstream(target, meter);
      const manifests = new ManifestCache({
        store: opts.store,
        upstream,
        log: opts.log,
        counters: this.#counters,
        tagTtlMs: opts.config.tagTtlSeconds * 1000,
        slot: () => this.#slot(),
        onCached: () => this.#scheduleEviction(),
      });
      return { url: target.url, namespace, prefix, upstream, manifests };
    };
    this.#default = opts.config.upstream ? route(opts.config.upstream, opts.config.namespace, undefined) : undefined;
    this.#mirrors = (opts.config.mirrors ?? []).map((m) => route(m.upstream, m.namespace, mirrorPrefix(m)));
  }

  start(): void {
    this.#timer = setInterval(() => {
      void this.#store.cacheIndex.flush().catch((err: unknown) => this.#log.warn({ err }, 'access time flush failed'));
    }, this.#config.accessFlushSeconds * 1000);
    this.#timer.unref();
    // Disk pressure (sync, a push, a fill needs room) evicts the cache first, with or without a quota.
    this.#store.setCacheEvictor(async (bytes) => {
      await this.#evicting;
      return evictBytes({ store: this.#store, log: this.#log, counters: this.#counters, pinned: this.#pinned }, bytes);
    });
    this.#log.info({ upstream: this.#default?.url ?? null, mirrors: this.#mirrors.map((m) => ({ namespace: m.namespace, url: m.url, prefix: m.prefix })), tagTtlSeconds: this.#config.tagTtlSeconds, cacheQuotaBytes: this.#config.cacheQuotaBytes ?? null }, 'pull-through proxy on');
    this.#scheduleEviction();
  }

  /**
   * The repository a request means in the store: prefixed for a mirror's namespace (containerd's
   * ?ns=), as requested otherwise.
   */
  storeName(name: string, ns: string | undefined): string {
    return this.#resolve(name, ns)?.repo ?? name;
  }

  async prepareManifest(name: string, reference: string, opts: { ns: string | undefined; signal: AbortSignal }): Promise<void> {
    const to = this.#resolve(name, opts.ns);
    if (!to) return;
    await to.route.manifests.prepare(to.repo, to.upstreamRepo, reference, opts.signal);
  }

  async openBlob(name: string, digest: string, opts: { ns: string | undefined; signal: AbortSignal }): Promise<ProxiedBlob | 'stored'> {
    const to = this.#resolve(name, opts.ns);
    if (!to) throw proxyError(ProxyErrorCode.blobUnknown, `blob ${digest} not found in ${name} (not proxied${opts.ns ? ` for ${opts.ns}` : ''})`);
    const repo = to.repo;
    for (let attempt = 0; ; attempt++) {
      if (this.#store.hasBlob(digest)) {
        // Cached for another repository already (or committed just now): link it here.
        await this.#store.linkBlob(repo, digest);
        return 'stored';
      }
      const fill = this.#fill(to, digest);
      try {
        await abortable(fill.ready, opts.signal);
      } catch (err) {
        if (opts.signal.aborted) throw err;
        throw this.#blobMissError(repo, digest, err);
      }
      const reader = fill.attach();
      if (reader) return reader;
      // The fill finished between our checks: the store has it, or it failed and we try once more.
      if (attempt >= 1) throw proxyError(ProxyErrorCode.blobUnknown, `blob ${digest} could not be fetched for ${repo}`);
    }
  }

  noteBlobHit(_repo: string, digest: string): void {
    this.#counters.blobHits++;
    const cache = this.#store.cacheIndex;
    if (cache.isCachedBlob(digest)) cache.touchBlob(digest);
  }

  noteBlobServed(digest: string, bytes: number): void {
    if (this.#store.cacheIndex.isCachedBlob(digest)) this.#counters.cacheServedBytes += bytes;
  }

  status(): ProxyStatus {
    return {
      enabled: true,
      upstream: this.#default?.url ?? null,
      askPeers: this.#blobSources !== undefined,
      mirrors: this.#mirrors.map((m) => ({ namespace: m.namespace!, url: m.url, repositoryPrefix: m.prefix! })),
      ...this.#counters,
      inFlight: this.#mine.size,
      cacheBytes: this.#store.cacheIndex.bytes(),
      cacheQuotaBytes: this.#config.cacheQuotaBytes ?? null,
    };
  }

  /** Runs eviction now (and waits), for tests and operators. */
  async evict(): Promise<void> {
    this.#scheduleEviction();
    while (this.#evicting) await this.#evicting;
  }

  /** After the registry drained: stops fills still running, writes access times, closes the client. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#store.setCacheEvictor(undefined);
    for (const fill of this.#mine) fill.abort();
    await Promise.all([...this.#mine].map((f) => f.done));
    await this.#evicting;
    await this.#store.cacheIndex.flush().catch(() => undefined);
    await Promise.all([this.#default, ...this.#mirrors].map((r) => r?.upstream.close()));
  }

  /**
   * The fill of the digest in flight in this process (a sync download, a peer's request, another
   * client's miss) joined, or a new one: one upstream fetch per digest, whoever asked first.
   */
  #fill(to: Resolved, digest: string): Fill {
    const running = this.#fills.get(digest);
    if (running) {
      this.#counters.fetchesJoined++;
      this.#linkWhenDone(running, to.repo);
      return running;
    }
    const release = this.#slot();
    this.#counters.blobMisses++;
    let fill: Fill | undefined;
    const policy = proxyPolicy(this.#config, this.#store, digest, () => fill?.written ?? 0, () => this.#counters.upstreamResumes++);
    ({ fill } = this.#fills.fill({
      store: this.#store,
      source: proxySources(this.#blobSources, to.repo, to.route.upstream),
      repo: to.upstreamRepo,
      storeRepo: to.repo,
      digest,
      policy,
      log: this.#log,
    }));
    const started = fill;
    this.#mine.add(started);
    void started.done.then(() => {
      this.#mine.delete(started);
      release();
      this.#counters.peerBytes += started.peerBytes;
      if (started.state === 'verified') {
        if (started.peer !== undefined) this.#counters.blobsFromPeers++;
        this.#scheduleEviction();
      } else this.#counters.fetchesFailed++;
    });
    return started;
  }

  /** A joined fill commits under its starter's repository: link the blob into this one too. */
  #linkWhenDone(fill: Fill, repo: string): void {
    if (fill.storeRepo === repo) return;
    void fill.done.then(async () => {
      if (fill.state === 'verified') await this.#store.linkBlob(repo, fill.digest);
    }).catch((err: unknown) => this.#log.warn({ err, digest: fill.digest, repo }, 'blob link failed'));
  }

  #blobMissError(repo: string, digest: string, err: unknown): Error {
    // The disk cannot take it (507 DISK_FULL / STORE_READ_ONLY): said as such, not as a miss.
    if (isDiskError(err)) return err;
    if (isSatelliteError(err, 'UPSTREAM_NOT_FOUND')) return proxyError(ProxyErrorCode.blobUnknown, `blob ${digest} not found in ${repo} (upstream: not found)`);
    this.#counters.upstreamErrors++;
    // 404, not 5xx: containerd fails over to its next host only on 404 for blobs.
    return proxyError(ProxyErrorCode.blobUnknown, `blob ${digest} not cached in ${repo} and the upstream failed: ${(err as Error).message}`);
  }

  /** One upstream fetch slot; refuses at once when all are taken (a client must never hang). */
  #slot(): () => void {
    if (this.#closed) throw proxyError(ProxyErrorCode.busy, 'satellite is stopping');
    if (this.#fetching >= this.#config.maxConcurrentFetches) {
      throw proxyError(ProxyErrorCode.busy, `${this.#fetching} upstream fetches in flight (proxy.maxConcurrentFetches)`);
    }
    this.#fetching++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#fetching--;
    };
  }

  /**
   * A mirror when ?ns= names its namespace, or (without ?ns=) when the name starts with its
   * prefix; else the default upstream unless ?ns= names another registry than proxy.namespace.
   */
  #resolve(name: string, ns: string | undefined): Resolved | undefined {
    if (ns !== undefined) {
      const mirror = this.#mirrors.find((m) => m.namespace === ns);
      if (mirror) {
        const repo = `${mirror.prefix}/${name}`;
        return isRepositoryName(repo) ? { route: mirror, repo, upstreamRepo: name } : undefined;
      }
    } else {
      const mirror = this.#mirrors.find((m) => name.startsWith(`${m.prefix}/`));
      if (mirror) return { route: mirror, repo: name, upstreamRepo: name.slice(mirror.prefix!.length + 1) };
    }
    const d = this.#default;
    if (!d || (ns !== undefined && d.namespace !== undefined && ns !== d.namespace)) return undefined;
    return { route: d, repo: name, upstreamRepo: name };
  }

  #scheduleEviction(): void {
    const quota = this.#config.cacheQuotaBytes;
    if (quota === undefined || this.#closed) return;
    if (this.#evicting) {
      this.#evictAgain = true;
      return;
    }
    this.#evicting = (async () => {
      do {
        this.#evictAgain = false;
        try {
          await evictToQuota({ store: this.#store, log: this.#log, counters: this.#counters, quotaBytes: quota, pinned: this.#pinned });
        } catch (err) {
          this.#log.error({ err }, 'cache eviction failed');
        }
      } while (this.#evictAgain && !this.#closed);
    })().finally(() => {
      this.#evicting = undefined;
    });
  }
}
