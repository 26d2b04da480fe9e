import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isSatelliteError } from '../lib/errors.ts';
import { Limiter } from '../lib/limiter.ts';
import type { BlobOrigin, OpenedBlob } from '../fetch/index.ts';
import { PeerClient } from './client.ts';
import type { PeerEntry, PeersConfig } from './config-schema.ts';
import { PeerErrorCode, peerError } from './errors.ts';
import { Membership, rank, type Member } from './members.ts';
import { countingBody } from './counting-body.ts';
import { PeerStats } from './stats.ts';
import type { PeerBlobState } from './wire.ts';
import type { PeerCredentials } from './token.ts';

/** What the peers need from the local satellite: its store, and a way to fetch a blob for a peer. */
export interface LocalBlobs {
  /** Size of a committed blob; undefined when absent. */
  blobSize(digest: string): number | undefined;
  /** Bytes of a download in progress, if one is. */
  partialOffset(digest: string): number | undefined;
  /** True when a stored manifest lists the blob (an index lookup). */
  referenced(digest: string): boolean;
}
/** Fetches a blob of this satellite's own desired state (its repository and size from our plan). */
export type FetchOnRequest = (digest: string, signal: AbortSignal) => Promise<unknown>;

/** The local sync engine, as the peers see it. */
export interface LocalSync {
  /** Downloads a blob from the upstream now (a member asked for one this satellite lacks). */
  fetchOnRequest: FetchOnRequest;
  /** True while a download of the digest is in progress here (any source). */
  downloading(digest: string): boolean;
  /** Whether the desired state references the blob: 'pending' while the newest one is not planned yet. */
  scope(digest: string): 'wanted' | 'pending' | 'no';
}

type PeerResponse = OpenedBlob & { total: number };

/**
 * Blob sharing between the satellites of one site. Rendezvous hashing of each digest over the
 * members names one owner; the owner fetches the blob over the WAN (on its own, or when a member
 * asks), the others wait for it (bounded) and copy it over the LAN. Everything falls back to the
 * upstream: a dead, slow or lying peer costs seconds and is avoided afterwards.
 */
export class Peers {
  readonly membership: Membership;
  readonly stats: PeerStats;
  readonly credentials: PeerCredentials;
  readonly #config: PeersConfig;
  readonly #log: Logger;
  readonly #local: LocalBlobs;
  readonly #client: PeerClient;
  readonly #abort = new AbortController();
  /** Digests whose download here has read from the upstream: members may wait for them. */
  readonly #fromUpstream = new Set<string>();
  /** Digests being fetched for a peer: their downloads go straight to the upstream. */
  readonly #onRequest = new Set<string>();
  /** Fetch-on-request failures, not retried for a while: digest -> until (ms). */
  readonly #refused = new Map<string, number>();
  readonly #slots: Limiter;
  #fetch: FetchOnRequest | undefined;
  #downloading: (digest: string) => boolean = () => false;
  #scope: (digest: string) => 'wanted' | 'pending' | 'no' = () => 'no';

  constructor(opts: { config: PeersConfig; log: Logger; local: LocalBlobs; credentials: PeerCredentials; selfKey?: string | undefined }) {
    this.#config = opts.config;
    this.#log = opts.log;
    this.#local = opts.local;
    this.credentials = opts.credentials;
    this.membership = new Membership({ selfKey: opts.selfKey ?? opts.config.id, selfUrl: opts.config.advertiseUrl, static: opts.config.static });
    this.stats = new PeerStats(opts.config.downCooldownMs);
    this.#client = new PeerClient(opts.config, (peer) => this.credentials.outgoing(this.membership.fromSite(peer.key)), this.membership.selfKey);
    this.#slots = new Limiter(Math.max(1, opts.config.maxOnRequestFetches), 64);
  }

  /** Connects the sync engine: what is downloading here, and fetches for members (when enabled). */
  attach(sync: LocalSync): void {
    this.#downloading = (digest) => sync.downloading(digest);
    this.#scope = (digest) => sync.scope(digest);
    this.#fetch = this.#config.fetchOnRequest && this.#config.maxOnRequestFetches > 0 ? sync.fetchOnRequest : undefined;
  }

  /** The site membership Ground Control published (with the desired state); ignored unless fromGroundControl. */
  setSite(site: { name: string; members: readonly PeerEntry[]; secret?: string | undefined } | undefined): void {
    if (!this.#config.fromGroundControl) return;
    if (this.credentials.setSiteSecret(site?.secret)) this.#log.info({ site: site?.name ?? null, graceMs: this.#config.siteSecretGraceMs }, 'site secret rotated');
    const before = this.membership.peers().map((m) => `${m.key}=${m.url}`).join(',');
    this.membership.setPublished(site?.members ?? []);
    const members = this.membership.peers();
    if (members.map((m) => `${m.key}=${m.url}`).join(',') !== before) {
      this.#log.info({ site: site?.name ?? null, members: members.map((m) => m.key) }, 'site membership updated');
    }
  }

  /**
   * The first source among the peers that delivers `digest` from `offset`: the owner (waiting
   * while it fetches), then any member that already has it. Undefined = use the upstream.
   */
  async fetchFromPeers(repo: string, digest: string, size: number, offset: number, signal: AbortSignal): Promise<PeerResponse | undefined> {
    if (this.#onRequest.has(digest)) return undefined;
    const peers = this.membership.peers().filter((m) => !this.stats.isDown(m.key) && !this.stats.isBad(m.key, digest));
    if (peers.length === 0) return undefined;
    const self = this.membership.selfKey;
    const ranked = rank([...peers.map((m) => m.key), ...(self ? [self] : [])], digest);
    const byKey = new Map(peers.map((m) => [m.key, m]));
    const owner = byKey.get(ranked[0]!);
    this.#log.debug({ digest, owner: ranked[0], offset }, 'asking the site for a blob');
    if (owner) {
      const got = await this.#fromOwner(owner, repo, digest, size, offset, signal);
      if (got) return got;
    }
    // Anyone else who already holds it (an earlier owner, a member that synced it before).
    const others = ranked.map((k) => byKey.get(k)).filter((m): m is Member => m !== undefined && m !== owner);
    const states = await Promise.all(others.map((m) => this.#ask(m, repo, digest, size, false, 0, signal)));
    for (const [i, m] of others.entries()) {
      if (states[i]?.state !== 'present') continue;
      const got = await this.#download(m, digest, size, offset, signal);
      if (got) return got;
    }
    return undefined;
  }

  /**
   * For the pull-through proxy, where a device waits on the answer: a member that already holds
   * the blob (asked all at once, best ranked first), else one that is fetching it, waited for at
   * most waitMs. Never asks a member to fetch. Undefined = use the upstream.
   */
  async fetchPresent(repo: string, digest: string, waitMs: number, signal: AbortSignal): Promise<PeerResponse | undefined> {
    const peers = this.membership.peers().filter((m) => !this.stats.isDown(m.key) && !this.stats.isBad(m.key, digest));
    if (peers.length === 0) return undefined;
    const byKey = new Map(peers.map((m) => [m.key, m]));
    const ranked = rank(peers.map((m) => m.key), digest).map((k) => byKey.get(k)!);
    const states = await Promise.all(ranked.map((m) => this.#ask(m, repo, digest, undefined, false, 0, signal)));
    for (const [i, m] of ranked.entries()) {
      const st = states[i];
      if (st?.state !== 'present' || this.stats.isDown(m.key)) continue;
      const got = await this.#download(m, digest, st.size, 0, signal);
      if (got) return got;
    }
    const i = states.findIndex((st) => st?.state === 'fetching');
    const fetching = ranked[i];
    if (!fetching || waitMs <= 0) return undefined;
    const st = await this.#ask(fetching, repo, digest, undefined, false, waitMs, signal);
    this.#log.debug({ peer: fetching.key, digest, state: st?.state ?? null }, 'waited for a peer fetching a blob');
    return st?.state === 'present' ? this.#download(fetching, digest, st.size, 0, signal) : undefined;
  }

  async #fromOwner(owner: Member, repo: string, digest: string, size: number, offset: number, signal: AbortSignal): Promise<PeerResponse | undefined> {
    const deadline = Date.now() + this.#config.maxWaitMs;
    let st = await this.#ask(owner, repo, digest, size, true, 0, signal);
    let lastOffset = -1;
    let lastProgress = Date.now();
    while (st?.state === 'fetching') {
      const now = Date.now();
      if (st.offset > lastOffset) {
        lastOffset = st.offset;
        lastProgress = now;
      }
      if (now - lastProgress > this.#config.stallMs || now >= deadline) {
        this.#log.info({ peer: owner.key, digest, offset: st.offset }, 'owner is not getting the blob in time; fetching it elsewhere');
        return undefined;
      }
      st = await this.#ask(owner, repo, digest, size, false, Math.min(this.#config.pollWaitMs, deadline - now), signal);
    }
    if (st?.state !== 'present') {
      this.#log.debug({ peer: owner.key, digest, state: st ?? null }, 'owner does not have the blob');
      return undefined;
    }
    return this.#download(owner, digest, size, offset, signal);
  }

  async #ask(peer: Member, repo: string, digest: string, size: number | undefined, fetch: boolean, waitMs: number, signal: AbortSignal): Promise<PeerBlobState | undefined> {
    try {
      return await this.#client.state(peer, digest, { repo, size, fetch, waitMs }, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      this.#failed(peer, err);
      return undefined;
    }
  }

  async #download(peer: Member, digest: string, size: number, offset: number, signal: AbortSignal): Promise<PeerResponse | undefined> {
    try {
      const res = await this.#client.blob(peer, digest, offset, signal);
      if (res.total !== size) {
        res.body.destroy();
        throw peerError(PeerErrorCode.protocol, `peer ${peer.key} says ${digest} has ${res.total} bytes, the manifest ${size}`);
      }
      const counter = countingBody(res.body, size - res.start, {
        bytes: (n) => this.stats.received(peer.key, peer.url, n),
        done: () => this.stats.blobReceived(peer.key, peer.url),
        fail: (err) => {
          if (!signal.aborted) this.#failed(peer, err);
        },
      });
      this.#log.debug({ peer: peer.key, digest, offset }, 'blob from peer');
      return { status: res.status, start: res.start, total: res.total, body: counter, origin: { kind: 'peer', id: peer.key } };
    } catch (err) {
      if (signal.aborted) throw err;
      this.#failed(peer, err);
      return undefined;
    }
  }

  #failed(peer: Member, err: unknown): void {
    // "Not there" is an answer, not a fault: the peer stays in use.
    if (isSatelliteError(err, PeerErrorCode.notFound)) return;
    this.stats.failed(peer.key, peer.url, err);
    this.#log.warn({ peer: peer.key, url: peer.url, err: (err as Error).message }, 'peer failed; skipping it for a while');
  }

  /**
   * Called by the port when the download of `digest` reads from the upstream: until that download
   * ends (committed or failed), members asking for the blob are told to wait for it.
   */
  upstreamRead(digest: string): void {
    if (this.#fromUpstream.size >= 1024) for (const d of this.#fromUpstream) if (!this.#downloading(d)) this.#fromUpstream.delete(d);
    this.#fromUpstream.add(digest);
  }

  #fetchingHere(digest: string): boolean {
    if (this.#onRequest.has(digest)) return true;
    if (!this.#fromUpstream.has(digest)) return false;
    if (this.#downloading(digest)) return true;
    this.#fromUpstream.delete(digest);
    return false;
  }

  reportBadSource(digest: string, sources: BlobOrigin[]): boolean {
    const members = new Map(this.membership.peers().map((m) => [m.key, m]));
    let peers = 0;
    for (const s of sources) {
      if (s.kind !== 'peer') continue;
      peers++;
      this.stats.badDigest(s.id, members.get(s.id)?.url ?? '', digest);
      this.#log.warn({ peer: s.id, digest }, 'peer sent bytes that do not match the digest; not asking it for this blob again');
    }
    return peers > 0;
  }

  /**
   * What a member may ask about: blobs a stored manifest lists or this satellite's desired state
   * references. Anything else is answered as absent, never fetched, never served.
   */
  mayShare(digest: string): boolean {
    return this.#local.referenced(digest) || this.#scope(digest) === 'wanted';
  }

  /** What this satellite can tell a member about a blob now (starting a fetch for it if asked). */
  stateFor(digest: string, q: { size?: number | undefined; fetch: boolean }): PeerBlobState {
    const shared = this.mayShare(digest);
    if (shared) {
      const have = this.#local.blobSize(digest);
      if (have !== undefined) return { state: 'present', size: have };
    }
    if ((shared || this.#onRequest.has(digest)) && this.#fetchingHere(digest)) {
      return { state: 'fetching', offset: this.#local.partialOffset(digest) ?? 0, size: q.size ?? 0 };
    }
    // Fetch on request: only what our own sync wants (or may, once the newest desired state is planned).
    if (!q.fetch || !this.#fetch || (!shared && this.#scope(digest) !== 'pending')) return { state: 'absent' };
    const until = this.#refused.get(digest);
    if (until !== undefined && until > Date.now()) return { state: 'absent', reason: 'fetch failed recently' };
    if (!this.#startFetch(digest)) return { state: 'absent', reason: 'too many fetches for peers' };
    return { state: 'fetching', offset: 0, size: q.size ?? 0 };
  }

  /** Starts a bounded fetch for a member (maxOnRequestFetches at once, 64 waiting); false when full. */
  #startFetch(digest: string): boolean {
    const fetch = this.#fetch!;
    if (this.#onRequest.size >= this.#config.maxOnRequestFetches + 64) return false;
    this.#onRequest.add(digest);
    this.#log.info({ digest }, 'fetching a blob a peer asked for');
    this.#slots
      .run(() => fetch(digest, this.#abort.signal))
      .catch((err: unknown) => {
        this.#refused.set(digest, Date.now() + 10_000);
        if (this.#refused.size > 4096) this.#refused.delete(this.#refused.keys().next().value!);
        this.#log.warn({ digest, err: (err as Error).message }, 'fetch for a peer failed');
      })
      .finally(() => this.#onRequest.delete(digest));
    return true;
  }

  /** Long-poll: the state, held while 'fetching' for at most waitMs. */
  async waitState(digest: string, q: { size?: number | undefined; fetch: boolean; waitMs: number }, signal: AbortSignal) {
    const deadline = Date.now() + Math.min(q.waitMs, this.#config.pollWaitMs);
    let st = this.stateFor(digest, q);
    while (st.state === 'fetching' && Date.now() < deadline && !signal.aborted && !this.#abort.signal.aborted) {
      await sleep(Math.min(100, deadline - Date.now())).catch(() => undefined);
      st = this.stateFor(digest, { ...q, fetch: false });
    }
    return st;
  }

  status() {
    return {
      self: this.membership.selfKey ?? null,
      members: this.membership.peers(),
      fetchingForPeers: this.#onRequest.size,
      ...this.stats.snapshot(),
    };
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await this.#client.close();
  }
}
