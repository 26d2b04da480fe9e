import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { isSatelliteError } from '../lib/errors.ts';
import type { DeviceCredentials, MissHandler, ProxiedBlob } from '../registry/index.ts';
import { isDigest } from '../lib/digest.ts';
import { isTag } from '../oci/names.ts';
import { DeviceAccess } from './device-access.ts';
import { isRepositoryName } from '../oci/names.ts';
import { mirrorPrefix, type ProxyConfig } from './config-schema.ts';
import { DeviceAuthError, ProxyErrorCode, proxyError } from './errors.ts';
import { evictBytes, evictToQuota } from './eviction.ts';
import { isDiskError } from '../store/index.ts';
import { abortable, ManifestCache } from './manifest-cache.ts';
import { Fills, type BlobSource, type Fill } from '../fetch/index.ts';
import { proxyPolicy, proxySources } from './fill-policy.ts';
import type { AccessCheck, ProxyStore, ProxyUpstream } from './ports.ts';
import { newCounters, type ProxyCounters, type ProxyStatus } from './stats.ts';
import { SignatureGate } from './signature-gate.ts';
import type { TrustPolicy } from '../protocol/desired-state.ts';

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
  /**
   * For proxy.signaturePolicy: the PEM keys read from its keyFiles, and the desired state's trust
   * policies as in force now.
   */
  signatures?: { keys: string[]; desired: () => TrustPolicy[] | undefined } | undefined;
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
  /** The registry host the device named (?ns=), when it said. */
  ns: string | undefined;
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
  /** Fills made with a device's credentials (restricted repositories): nobody else joins them. */
  readonly #deviceFills = new WeakSet<Fill>();
  readonly #access = new DeviceAccess();
  /** proxy.signaturePolicy, when not off. */
  readonly #gate: SignatureGate | undefined;
  /** The upstream's /v2/ challenge per route, relayed to devices that come without credentials. */
  readonly #baseChallenges = new Map<Route, { at: number; value: Promise<string | undefined> }>();
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
    const sp = opts.config.signaturePolicy;
    this.#gate =
      sp.mode === 'off'
        ? undefined
        : new SignatureGate({
            config: sp,
            keys: opts.signatures?.keys ?? [],
            desired: opts.signatures?.desired ?? (() => undefined),
            store: opts.store,
            log: opts.log.child({ part: 'signatures' }),
            timeoutMs: opts.config.firstByteTimeoutMs + opts.config.idleTimeoutMs,
          });
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
        gate: this.#gate,
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

  async prepareManifest(name: string, reference: string, opts: { ns: string | undefined; signal: AbortSignal; device?: DeviceCredentials | undefined }): Promise<void> {
    const to = this.#resolve(name, opts.ns);
    if (!to) return;
    const via = await this.#prepareManifest(to, reference, opts);
    await this.#admitStored(to, reference, via?.upstream);
  }

  async #prepareManifest(to: Resolved, reference: string, opts: { signal: AbortSignal; device?: DeviceCredentials | undefined }): Promise<{ upstream: ProxyUpstream } | undefined> {
    const what: AccessCheck = { kind: 'manifest', reference };
    if (this.#store.cacheIndex.isRestrictedRepo(to.repo)) {
      const via = await this.#authorize(to, what, opts.device, opts.signal);
      await this.#asDevice(to, reference, () => to.route.manifests.prepare(to.repo, to.upstreamRepo, reference, opts.signal, via));
      return via;
    }
    try {
      await to.route.manifests.prepare(to.repo, to.upstreamRepo, reference, opts.signal);
      return undefined;
    } catch (err) {
      if (!isSatelliteError(err, ProxyErrorCode.refused)) throw err;
      const via = await this.#deviceFallback(to, what, opts.device, opts.signal, err);
      await this.#asDevice(to, reference, () => to.route.manifests.prepare(to.repo, to.upstreamRepo, reference, opts.signal, via));
      return via;
    }
  }

  /**
   * A manifest the proxy cached, about to be served: the signature policy's verdict for it (kept
   * per digest; checked again after a key rotation). Content of sync or pushes is not the proxy's.
   */
  async #admitStored(to: Resolved, reference: string, device: ProxyUpstream | undefined): Promise<void> {
    if (!this.#gate) return;
    const local = this.#store.getManifest(to.repo, reference);
    if (!local || !this.#store.cacheIndex.isCachedManifest(to.repo, local.digest)) return;
    await this.#gate.stored(to.repo, to.upstreamRepo, { digest: local.digest, mediaType: local.record.mediaType, body: local.content }, device ?? to.route.upstream);
  }

  /** Whether requests get a `device` (their Authorization forwarded): proxy.deviceCredentials.forward. */
  forwardsCredentials(viaHttpsProxy: boolean): boolean {
    const mode = this.#config.deviceCredentials.forward;
    return mode === 'all' || (mode === 'https-proxy' && viaHttpsProxy);
  }

  /**
   * Before anything is read from a restricted repository (manifests, blobs, tags, referrers):
   * the request's credentials must be confirmed by the upstream for it (or recently were).
   */
  async guard(name: string, ns: string | undefined, what: AccessCheck, opts: { device: DeviceCredentials | undefined; signal: AbortSignal }): Promise<void> {
    const to = this.#resolve(name, ns);
    // The repository the handler will read (storeName): also when no route resolves (?ns= of another registry).
    const repo = to?.repo ?? name;
    if (!this.#store.cacheIndex.isRestrictedRepo(repo)) return;
    if (!to) throw proxyError(what.kind === 'blob' ? ProxyErrorCode.blobUnknown : ProxyErrorCode.manifestUnknown, `${repo} is not served for ${ns ?? 'this registry'}`);
    // A malformed reference is the handler's to reject, without asking anyone.
    if (what.kind === 'manifest' && !isDigest(what.reference) && !isTag(what.reference)) return;
    if (what.kind === 'blob' && !isDigest(what.digest)) return;
    await this.#authorize(to, what, opts.device, opts.signal);
  }

  /**
   * The upstream's challenge for a device's `GET /v2/` without credentials (so clients that
   * decide on auth at /v2/, like skopeo, send theirs); undefined: answer 200. Basic as the
   * upstream said; Bearer only when the satellite relays its realm (relayToken), named on the
   * registry host the device addressed (`ns`); a realm elsewhere only per repository, as before.
   * Learned once a minute at most, within 2 s.
   */
  async baseChallenge(ns: string | undefined): Promise<string | undefined> {
    const route = ns !== undefined ? (this.#mirrors.find((m) => m.namespace === ns) ?? this.#default) : this.#default;
    if (!route) return undefined;
    const challenge = await this.#learnedChallenge(route);
    if (challenge === undefined) return undefined;
    // Bearer only with a realm the satellite relays: one elsewhere may be out of the device's reach
    // (httpsProxy.tunnel: refuse), and an anonymous pull of cached content needs no token at all.
    if (challenge.startsWith('Bearer ') && !relayableRealm(challenge, route, ns)) return undefined;
    return deviceChallenge(challenge, route, ns);
  }

  /** The upstream's /v2/ challenge as learned (cached a minute; undefined if it never asked or could not be reached). */
  #learnedChallenge(route: Route): Promise<string | undefined> {
    let entry = this.#baseChallenges.get(route);
    if (!entry || Date.now() - entry.at > 60_000) {
      const value = route.upstream.challenge(undefined, AbortSignal.timeout(2000)).catch(() => undefined);
      entry = { at: Date.now(), value };
      this.#baseChallenges.set(route, entry);
    }
    return entry.value;
  }

  /**
   * A device's request (through the HTTPS proxy, for the intercepted host `ns`) at `pathname`:
   * when that is exactly the path of the upstream's bearer token realm, and the realm is on the
   * upstream's own host or on `ns` (Harbor's /service/token), the realm's answer to a GET with
   * the device's query and Authorization; undefined otherwise (not the realm: the registry
   * answers as usual). Nothing is cached; the caller caps and streams the body.
   */
  async relayToken(ns: string, pathname: string, query: URLSearchParams, authorization: string | undefined, signal: AbortSignal): Promise<{ status: number; headers: Record<string, string>; body: Readable } | undefined> {
    const route = this.#mirrors.find((m) => m.namespace === ns) ?? (this.#default && (this.#default.namespace === undefined || this.#default.namespace === ns) ? this.#default : undefined);
    if (!route) return undefined;
    const challenge = await this.#learnedChallenge(route);
    const realm = challenge === undefined ? undefined : relayableRealm(challenge, route, ns);
    if (!realm || realm.pathname !== pathname) return undefined;
    const target = new URL(realm.href);
    target.search = query.toString();
    this.#counters.tokenRelays++;
    return route.upstream.relayTokenRequest(target, authorization, AbortSignal.any([signal, AbortSignal.timeout(this.#config.firstByteTimeoutMs)]));
  }

  async openBlob(name: string, digest: string, opts: { ns: string | undefined; signal: AbortSignal; device?: DeviceCredentials | undefined }): Promise<ProxiedBlob | 'stored'> {
    const to = this.#resolve(name, opts.ns);
    if (!to) throw proxyError(ProxyErrorCode.blobUnknown, `blob ${digest} not found in ${name} (not proxied${opts.ns ? ` for ${opts.ns}` : ''})`);
    const repo = to.repo;
    const what: AccessCheck = { kind: 'blob', digest };
    let via = this.#store.cacheIndex.isRestrictedRepo(repo) ? await this.#authorize(to, what, opts.device, opts.signal) : undefined;
    let waits = 0;
    for (let attempt = 0; ; attempt++) {
      if (this.#store.hasBlob(digest)) {
        // Knowing a digest is no authorisation: a blob fetched with a device's credentials is linked
        // into another repository only once the upstream says that repository has it, for whoever asks.
        if (this.#store.cacheIndex.isRestrictedBlob(digest) && !(await this.#upstreamHas(to, digest, via, opts.signal))) {
          throw proxyError(ProxyErrorCode.blobUnknown, `blob ${digest} not found in ${repo}`);
        }
        // Cached for another repository already (or committed just now): link it here.
        await this.#store.linkBlob(repo, digest);
        return 'stored';
      }
      // A device's fill is joined by nobody, and a device joins nobody's: wait for the one running to
      // end, then the stored blob is checked with the upstream above (restricted) or linked.
      const running = this.#fills.get(digest);
      if (running && (via !== undefined || this.#deviceFills.has(running)) && waits++ < 3) {
        await abortable(running.done.then(() => undefined, () => undefined), opts.signal);
        attempt--;
        continue;
      }
      // A blob names no image: under enforce it is fetched only for a manifest the policy admitted.
      this.#gate?.blobAllowed(repo, digest);
      if (via) await this.#store.cacheIndex.markRestrictedBlob(digest);
      const fill = this.#fill(to, digest, via?.upstream);
      try {
        await abortable(fill.ready, opts.signal);
      } catch (err) {
        if (opts.signal.aborted) throw err;
        if (!via && isSatelliteError(err, 'UPSTREAM_AUTH') && opts.device !== undefined && attempt === 0) {
          // The satellite's own credentials cannot read it: the device's may (restricts the repository).
          via = await this.#deviceFallback(to, what, opts.device, opts.signal, err);
          continue;
        }
        if (via && isSatelliteError(err, 'UPSTREAM_AUTH')) throw await this.#refuse(to, 'the upstream refused your credentials for this blob', opts.signal);
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
      signaturePolicy: this.#gate?.status() ?? { mode: 'off' },
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
   * client's miss) joined, or a new one: one upstream fetch per digest, whoever asked first. A
   * device's fill (restricted repository) asks only the upstream, with the device's credentials, and
   * is never joined (openBlob waits for it to end, then checks the upstream like for a stored blob).
   */
  #fill(to: Resolved, digest: string, device?: ProxyUpstream): Fill {
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
      // Peers serve by digest alone: a restricted fill asks the upstream, which checks the device's access.
      source: device ? proxySources(undefined, to.repo, device) : proxySources(this.#blobSources, to.repo, to.route.upstream),
      repo: to.upstreamRepo,
      storeRepo: to.repo,
      digest,
      policy,
      log: this.#log,
    }));
    const started = fill;
    if (device) this.#deviceFills.add(started);
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

  /**
   * The device's view of the upstream for a restricted repository, once its credentials are
   * confirmed: by the upstream now (an access check for what it asks), or within
   * confirmSeconds of the last confirmation, or (upstream unreachable) within offlineGraceSeconds.
   */
  async #authorize(to: Resolved, what: AccessCheck, device: DeviceCredentials | undefined, signal: AbortSignal): Promise<{ upstream: ProxyUpstream; key: string }> {
    const authorization = device?.authorization;
    const upstream = authorization === undefined ? undefined : to.route.upstream.forDevice(authorization);
    if (authorization === undefined || !upstream) {
      throw await this.#refuse(to, `${to.repo} is readable only with credentials for the upstream`, signal);
    }
    const { confirmSeconds, offlineGraceSeconds } = this.#config.deviceCredentials;
    const key = this.#access.fingerprint(authorization);
    const age = this.#access.age(key, to.repo);
    if (age !== undefined && age < confirmSeconds * 1000) return { upstream, key };
    let ok: boolean;
    try {
      ok = await upstream.checkAccess(to.upstreamRepo, what, AbortSignal.any([signal, AbortSignal.timeout(this.#config.firstByteTimeoutMs)]));
    } catch (err) {
      if (signal.aborted) throw err;
      if (isSatelliteError(err, 'UPSTREAM_NOT_FOUND')) {
        throw proxyError(what.kind === 'blob' ? ProxyErrorCode.blobUnknown : ProxyErrorCode.manifestUnknown, `not found in ${to.repo} (upstream: not found)`);
      }
      if (age !== undefined && age < offlineGraceSeconds * 1000) {
        this.#counters.deviceOfflineAdmitted++;
        this.#log.warn({ repo: to.repo, confirmedSecondsAgo: Math.round(age / 1000), err: (err as Error).message }, 'upstream unavailable; admitting device credentials it confirmed earlier');
        return { upstream, key };
      }
      this.#counters.upstreamErrors++;
      throw await this.#refuse(to, `the upstream could not confirm your credentials for ${to.repo}: ${(err as Error).message}`, signal);
    }
    this.#counters.deviceChecks++;
    if (!ok) {
      this.#access.revoke(key, to.repo);
      this.#counters.deviceRefused++;
      this.#log.info({ repo: to.repo, what: what.kind }, 'device credentials refused by the upstream');
      throw await this.#refuse(to, `the upstream refused your credentials for ${to.repo}`, signal);
    }
    this.#access.confirm(key, to.repo);
    return { upstream, key };
  }

  /**
   * The satellite's own credentials were refused: with a device's (forwarding on for this
   * request), the repository becomes restricted (recorded before anything of it is stored) and
   * the device's view is returned; without, 401 with the upstream's challenge; forwarding off: 404 as before.
   */
  async #deviceFallback(to: Resolved, what: AccessCheck, device: DeviceCredentials | undefined, signal: AbortSignal, err: unknown): Promise<{ upstream: ProxyUpstream; key: string }> {
    if (device === undefined) {
      const code = what.kind === 'blob' ? ProxyErrorCode.blobUnknown : ProxyErrorCode.manifestUnknown;
      throw proxyError(code, `${to.repo}: not cached and the upstream refused the satellite's credentials (${(err as Error).message})`);
    }
    const via = await this.#authorize(to, what, device, signal);
    if (!this.#store.cacheIndex.isRestrictedRepo(to.repo)) {
      await this.#store.cacheIndex.markRestrictedRepo(to.repo);
      this.#log.info({ repo: to.repo }, "repository readable with device credentials only: restricted to requests the upstream authorises");
    }
    return via;
  }

  /** Runs a device's manifest fetch; its refusal becomes a 401 for the device. */
  async #asDevice(to: Resolved, reference: string, job: () => Promise<void>): Promise<void> {
    try {
      await job();
    } catch (err) {
      if (isSatelliteError(err, ProxyErrorCode.refused)) throw await this.#refuse(to, `the upstream refused your credentials for ${to.repo}:${reference}`);
      throw err;
    }
  }

  /** Whether the upstream serves this blob in this repository to these credentials (device's or the satellite's). */
  async #upstreamHas(to: Resolved, digest: string, via: { upstream: ProxyUpstream } | undefined, signal: AbortSignal): Promise<boolean> {
    try {
      return await (via?.upstream ?? to.route.upstream).checkAccess(to.upstreamRepo, { kind: 'blob', digest }, AbortSignal.any([signal, AbortSignal.timeout(this.#config.firstByteTimeoutMs)]));
    } catch (err) {
      if (signal.aborted) throw err;
      return false;
    }
  }

  /** 401 with the upstream's challenge for the repository (a generic Basic one if it never said). */
  async #refuse(to: Resolved, message: string, signal?: AbortSignal): Promise<DeviceAuthError> {
    const challenge = await to.route.upstream.challenge(to.upstreamRepo, signal ? AbortSignal.any([signal, AbortSignal.timeout(2000)]) : AbortSignal.timeout(2000)).catch(() => undefined);
    return new DeviceAuthError(message, challenge !== undefined ? deviceChallenge(challenge, to.route, to.ns) : `Basic realm="${to.route.namespace ?? 'registry'}"`);
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
        return isRepositoryName(repo) ? { route: mirror, repo, upstreamRepo: name, ns } : undefined;
      }
    } else {
      const mirror = this.#mirrors.find((m) => name.startsWith(`${m.prefix}/`));
      if (mirror) return { route: mirror, repo: name, upstreamRepo: name.slice(mirror.prefix!.length + 1), ns };
    }
    const d = this.#default;
    if (!d || (ns !== undefined && d.namespace !== undefined && ns !== d.namespace)) return undefined;
    return { route: d, repo: name, upstreamRepo: name, ns };
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

/** The realm of a Bearer challenge the satellite built (challengeFor: quoted, no escapes); undefined for others. */
function bearerRealm(challenge: string): URL | undefined {
  const m = /^Bearer realm="([^"]*)"/.exec(challenge);
  if (!m) return undefined;
  try {
    const url = new URL(m[1]!);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** The bearer realm when the satellite relays it for devices: on the upstream's own host, or on the host they address. */
function relayableRealm(challenge: string, route: Route, ns: string | undefined): URL | undefined {
  const realm = bearerRealm(challenge);
  if (!realm || realm.username !== '' || realm.password !== '') return undefined;
  const host = realm.host.toLowerCase();
  return host === new URL(route.url).host.toLowerCase() || (ns !== undefined && host === ns.toLowerCase()) ? realm : undefined;
}

/**
 * The challenge as a device should see it: a bearer realm on the upstream's own host is named on
 * the registry host the device addressed (`ns`), which the HTTPS proxy intercepts and where the
 * satellite relays the realm's path; any other challenge as the upstream sent it.
 */
function deviceChallenge(challenge: string, route: Route, ns: string | undefined): string {
  const realm = ns === undefined ? undefined : relayableRealm(challenge, route, ns);
  if (!realm || realm.host.toLowerCase() === ns!.toLowerCase()) return challenge;
  const named = `https://${ns!}${realm.pathname}${realm.search}`;
  return challenge.replace(/^Bearer realm="[^"]*"/, `Bearer realm="${named}"`);
}
