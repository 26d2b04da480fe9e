import type { Logger } from 'pino';
import type { TrustPolicy } from '../protocol/desired-state.ts';
import { SatelliteError } from '../lib/errors.ts';
import {
  isSignatureArtifact,
  judge,
  policyFingerprint,
  policyFor,
  replicateSignatures,
  storedSignatures,
  type EffectivePolicy,
  type SignatureReplica,
  type SignatureSource,
  type TrustDecision,
  type Verdict,
} from '../trust/index.ts';
import type { ProxySignaturePolicy } from './config-schema.ts';
import type { ProxyStore, ProxyUpstream } from './ports.ts';

/** A manifest as fetched or stored. */
export interface GateManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
}

/** One verdict, per repository and digest, valid for the policy it was reached under. */
export interface VerdictEntry {
  repository: string;
  digest: string;
  /** policyFingerprint: mode and key ids. Another fingerprint (a key rotation) means check again. */
  fingerprint: string;
  /** exempt: a signature manifest or referrers index (nothing runnable, not signed itself). */
  verdict: Verdict | 'exempt';
  mode: 'enforce' | 'warn';
  keyId?: string;
  /** SIGNATURE_REQUIRED / SIGNATURE_INVALID when not verified. */
  code?: string;
  reason?: string;
  /** The verified index this manifest was admitted through (a platform manifest of a signed index). */
  via?: string;
  refused: boolean;
  at: number;
}

export interface SignatureGateStatus {
  mode: 'off' | 'warn' | 'enforce';
  repositories: string[] | null;
  /** Ids of the keys from proxy.signaturePolicy.keyFiles (the desired state's are in addition). */
  keys: string[];
  desiredState: boolean;
  /** Verdicts reached (not cache hits), by verdict. */
  verdicts: Record<Verdict | 'exempt', number>;
  /** Requests answered 403 DENIED by the policy (manifests and blobs). */
  refusals: number;
  /** Requests answered with a verdict already reached. */
  verdictCacheHits: number;
  cachedVerdicts: number;
  /** The most recent images without a valid signature (served under warn, refused under enforce). */
  flagged: Array<Pick<VerdictEntry, 'repository' | 'digest' | 'verdict' | 'mode' | 'code' | 'reason' | 'refused'> & { checkedAt: string }>;
}

export interface SignatureGateOptions {
  config: ProxySignaturePolicy;
  /** PEM public keys read from config.keyFiles. */
  keys: string[];
  /** The desired state's trust policies, as in force now. */
  desired: () => TrustPolicy[] | undefined;
  store: ProxyStore;
  log: Logger;
  /** Bounds each signature check (reads from the upstream). */
  timeoutMs: number;
}

const FLAGGED_MAX = 50;

/**
 * The proxy's signature policy: before a manifest fetched on a miss is cached, and before a cached
 * one is served, its signatures are checked with the same code sync uses (trust/judge). Verdicts
 * are kept per repository and digest under the policy's fingerprint (bounded, least recently used
 * dropped), so a hot tag is not checked again on every pull and a key rotation checks again.
 */
export class SignatureGate {
  readonly #cfg: ProxySignaturePolicy;
  readonly #keys: string[];
  readonly #desired: () => TrustPolicy[] | undefined;
  readonly #store: ProxyStore;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #verdicts = new Map<string, VerdictEntry>();
  readonly #inFlight = new Map<string, Promise<{ entry: VerdictEntry; replica?: SignatureReplica | undefined }>>();
  readonly #counts: Record<Verdict | 'exempt', number> = { verified: 0, unsigned: 0, invalid: 0, exempt: 0 };
  #refusals = 0;
  #cacheHits = 0;
  readonly #keyIds: string[];

  constructor(opts: SignatureGateOptions) {
    this.#cfg = opts.config;
    this.#keys = opts.keys;
    this.#desired = opts.desired;
    this.#store = opts.store;
    this.#log = opts.log;
    this.#timeoutMs = opts.timeoutMs;
    // Parsed once here so a bad key fails at start (the daemon read the files and checked them too).
    this.#keyIds = policyFor([{ name: 'keys', mode: 'warn', keys: this.#keys }], '_')?.keys.map((k) => k.id) ?? [];
  }

  /**
   * The policy covering a store repository, or undefined (nothing checked): proxy.signaturePolicy
   * for its repositories, with its key files and (desiredState) the desired state's keys, plus
   * every desired-state policy covering the repository; the stricter mode wins, keys are pooled.
   */
  policy(repo: string): EffectivePolicy | undefined {
    if (this.#cfg.mode === 'off') return undefined;
    const desired = this.#cfg.desiredState ? (this.#desired() ?? []) : [];
    const own: TrustPolicy = {
      name: 'proxy.signaturePolicy',
      mode: this.#cfg.mode,
      keys: [...this.#keys, ...desired.flatMap((p) => p.keys)],
      ...(this.#cfg.repositories ? { repositories: this.#cfg.repositories } : {}),
    };
    return policyFor([own, ...desired], repo);
  }

  /**
   * A manifest just fetched from the upstream on a miss, before it is stored: throws
   * SIGNATURE_REQUIRED / SIGNATURE_INVALID (403 DENIED) when the policy refuses it, so it is neither
   * served nor cached. Returns the signatures to keep beside it once it is stored.
   */
  async fetched(repo: string, upstreamRepo: string, m: GateManifest, upstream: ProxyUpstream): Promise<SignatureReplica | undefined> {
    const policy = this.policy(repo);
    if (!policy) return undefined;
    const { entry, replica } = await this.#verdict(repo, upstreamRepo, m, policy, upstream, 'upstream');
    this.#enforce(entry);
    return replica;
  }

  /**
   * A manifest the proxy cached, about to be served: checked again when its verdict is unknown
   * (dropped, a restart) or was reached under other keys, from the signatures kept in the store and,
   * when those do not verify, from the upstream. Throws when the policy refuses it.
   */
  async stored(repo: string, upstreamRepo: string, m: GateManifest, upstream: ProxyUpstream): Promise<void> {
    const policy = this.policy(repo);
    if (!policy) return;
    const { entry, replica } = await this.#verdict(repo, upstreamRepo, m, policy, upstream, 'store');
    // Newer signatures read from the upstream are kept for an image served with them.
    if (replica && !entry.refused) await this.keep(repo, replica);
    this.#enforce(entry);
  }

  /**
   * A blob miss: with enforce, fetched only when a stored (admitted) manifest references it: a
   * blob GET by digest names no image, so it cannot be checked itself.
   */
  blobAllowed(repo: string, digest: string): void {
    const policy = this.policy(repo);
    if (!policy || policy.mode !== 'enforce' || this.#store.isBlobReferenced(digest)) return;
    this.#refusals++;
    const reason = `blob ${digest} is not referenced by any admitted manifest; under an enforced signature policy the proxy fetches blobs only for images it admitted`;
    throw new SatelliteError('SIGNATURE_REQUIRED', `SIGNATURE_REQUIRED: ${reason}`, { detail: { code: 'SIGNATURE_REQUIRED', repository: repo, digest, reason } });
  }

  /** Stores signatures beside the image (devices can check again from the satellite); failures logged. */
  async keep(repo: string, replica: SignatureReplica | undefined): Promise<void> {
    if (!replica) return;
    try {
      await replicateSignatures(this.#store, repo, replica, this.#log);
    } catch (err) {
      this.#log.warn({ err, repo, tags: replica.groups.flatMap((g) => g.tags) }, 'signatures not kept');
    }
  }

  status(): SignatureGateStatus {
    const flagged = [...this.#verdicts.values()]
      .filter((e) => e.verdict === 'unsigned' || e.verdict === 'invalid')
      .sort((a, b) => b.at - a.at)
      .slice(0, FLAGGED_MAX)
      .map((e) => ({ repository: e.repository, digest: e.digest, verdict: e.verdict, mode: e.mode, code: e.code, reason: e.reason, refused: e.refused, checkedAt: new Date(e.at).toISOString() }));
    return {
      mode: this.#cfg.mode,
      repositories: this.#cfg.repositories ?? null,
      keys: this.#keyIds,
      desiredState: this.#cfg.desiredState,
      verdicts: { ...this.#counts },
      refusals: this.#refusals,
      verdictCacheHits: this.#cacheHits,
      cachedVerdicts: this.#verdicts.size,
      flagged,
    };
  }

  #enforce(entry: VerdictEntry): void {
    if (!entry.refused) return;
    this.#refusals++;
    const code = entry.code ?? 'SIGNATURE_INVALID';
    throw new SatelliteError(code, `${code}: ${entry.repository}@${entry.digest}: ${entry.reason ?? code}`, {
      detail: { code, repository: entry.repository, digest: entry.digest, reason: entry.reason ?? null },
    });
  }

  /** The verdict for repo@digest: cached under this policy, or reached now (one check per key at a time). */
  async #verdict(repo: string, upstreamRepo: string, m: GateManifest, policy: EffectivePolicy, upstream: ProxyUpstream, from: 'upstream' | 'store') {
    const fingerprint = policyFingerprint(policy);
    const key = `${repo}@${m.digest}`;
    const cached = this.#verdicts.get(key);
    if (cached && cached.fingerprint === fingerprint && this.#fresh(cached)) {
      this.#verdicts.delete(key);
      this.#verdicts.set(key, cached);
      this.#cacheHits++;
      return { entry: cached };
    }
    let job = this.#inFlight.get(key);
    if (!job) {
      job = this.#check(repo, upstreamRepo, m, policy, fingerprint, upstream, from).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, job);
    }
    return job;
  }

  /** Verified and exempt verdicts hold until the keys change; the others are checked again after recheckSeconds. */
  #fresh(e: VerdictEntry): boolean {
    return e.verdict === 'verified' || e.verdict === 'exempt' || Date.now() - e.at < this.#cfg.recheckSeconds * 1000;
  }

  async #check(repo: string, upstreamRepo: string, m: GateManifest, policy: EffectivePolicy, fingerprint: string, upstream: ProxyUpstream, from: 'upstream' | 'store') {
    const base = { repository: repo, digest: m.digest, fingerprint, mode: policy.mode, at: Date.now() };
    let entry: VerdictEntry;
    let replica: SignatureReplica | undefined;
    if (isSignatureArtifact(m.body)) {
      entry = { ...base, verdict: 'exempt', refused: false };
    } else {
      const parent = await this.#admittedParent(repo, upstreamRepo, m.digest, policy, upstream);
      if (parent) {
        entry = { ...base, verdict: 'verified', refused: false, via: parent.digest, ...(parent.keyId ? { keyId: parent.keyId } : {}) };
      } else {
        const decision = await this.#judge(repo, upstreamRepo, m.digest, policy, upstream, from);
        replica = decision.result.replica;
        const f = decision.fields;
        entry = { ...base, verdict: f.signature, refused: decision.refused !== undefined, ...(f.signatureKey ? { keyId: f.signatureKey } : {}), ...(f.code ? { code: f.code } : {}) };
        if (decision.refused) entry.reason = decision.refused.reason;
        else if (f.reason) entry.reason = f.reason;
      }
    }
    this.#record(entry);
    return { entry, replica };
  }

  /**
   * Judges from where the manifest came: the upstream on a miss; for a stored manifest, the kept
   * signatures first (the WAN may be down), then the upstream when those do not verify (a
   * signature by a new key pushed since). An upstream that cannot be asked leaves the kept verdict.
   */
  async #judge(repo: string, upstreamRepo: string, digest: string, policy: EffectivePolicy, upstream: ProxyUpstream, from: 'upstream' | 'store'): Promise<TrustDecision> {
    const image = { repository: upstreamRepo, digest };
    const remote = upstreamSignatures(upstream);
    if (from === 'upstream') return judge(remote, policy, image, AbortSignal.timeout(this.#timeoutMs));
    let local: TrustDecision | undefined;
    try {
      local = await judge(storedSignatures(this.#store, repo), policy, image, AbortSignal.timeout(this.#timeoutMs));
      if (local.result.verdict === 'verified') return { ...local, result: { ...local.result, replica: undefined } };
    } catch (err) {
      this.#log.warn({ err, repo, digest }, 'kept signatures could not be read');
    }
    try {
      return await judge(remote, policy, image, AbortSignal.timeout(this.#timeoutMs));
    } catch (err) {
      if (!local) throw err;
      this.#log.info({ repo, digest, err: (err as Error).message }, 'upstream unavailable for a signature check; the kept signatures decide');
      return { ...local, result: { ...local.result, replica: undefined } };
    }
  }

  /**
   * cosign signs what a tag names: for a multi-platform image, the index. A platform manifest is
   * admitted through a stored index of the same repository that lists it and is verified itself.
   */
  async #admittedParent(repo: string, upstreamRepo: string, digest: string, policy: EffectivePolicy, upstream: ProxyUpstream): Promise<VerdictEntry | undefined> {
    let seen = 0;
    for (const parent of this.#store.manifestsOf(repo)) {
      if (++seen > 10_000) break;
      if (parent === digest || !this.#store.childrenOf(parent).includes(digest)) continue;
      const stored = this.#store.getManifest(repo, parent);
      if (!stored) continue;
      const { entry } = await this.#verdict(repo, upstreamRepo, { digest: parent, mediaType: stored.record.mediaType, body: stored.content }, policy, upstream, 'store');
      if (entry.verdict === 'verified' && entry.via === undefined) return entry;
    }
    return undefined;
  }

  #record(entry: VerdictEntry): void {
    this.#counts[entry.verdict]++;
    const key = `${entry.repository}@${entry.digest}`;
    this.#verdicts.delete(key);
    this.#verdicts.set(key, entry);
    while (this.#verdicts.size > this.#cfg.verdictCacheEntries) {
      const oldest = this.#verdicts.keys().next().value;
      if (oldest === undefined) break;
      this.#verdicts.delete(oldest);
    }
    const at = { repo: entry.repository, digest: entry.digest };
    if (entry.refused) this.#log.warn({ ...at, code: entry.code, reason: entry.reason }, 'manifest refused by signature policy');
    else if (entry.code) this.#log.warn({ ...at, code: entry.code, reason: entry.reason }, 'manifest served without a valid signature (policy mode warn)');
    else if (entry.verdict === 'verified') this.#log.info({ ...at, key: entry.keyId, via: entry.via }, 'manifest signature verified');
  }
}

/** The proxy's upstream client as a signature source. */
function upstreamSignatures(upstream: ProxyUpstream): SignatureSource {
  return {
    getManifest: (repo, reference, signal) => upstream.getManifest(repo, reference, signal),
    fetchBlob: (repo, digest, opts) => upstream.fetchBlob(repo, digest, opts?.signal ? { signal: opts.signal } : {}),
    ...(upstream.getReferrers ? { getReferrers: upstream.getReferrers.bind(upstream) } : {}),
  };
}
