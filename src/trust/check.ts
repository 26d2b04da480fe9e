import { open } from 'node:fs/promises';
import type { Logger } from 'pino';
import { digestOf } from '../lib/digest.ts';
import { unlinkIfExists } from '../lib/fs-atomic.ts';
import type { Store } from '../store/index.ts';
import { COSIGN_SIGNATURE_ARTIFACT_TYPE, parseSignatureManifest, signatureTag } from './cosign.ts';
import { DEFAULT_MAX_REFERRERS, fetchReferrers, getIfExists, type FetchedManifest, type SignatureSource } from './referrers.ts';
import { TrustErrorCode } from './errors.ts';
import { verifyPayload, type EffectivePolicy } from './verify.ts';
import { readCapped } from '../lib/read-capped.ts';

/** verified: a signature checks out; unsigned: none found; invalid: found, none verifies. */
export type Verdict = 'verified' | 'unsigned' | 'invalid';

/** Signature manifests to store beside the image: each group committed together under its tags (none: by digest). */
export interface SignatureReplica {
  groups: Array<{ tags: string[]; manifests: FetchedManifest[] }>;
  blobs: Map<string, Buffer>;
}

export interface TrustResult {
  verdict: Verdict;
  mode: 'enforce' | 'warn';
  /** The key that verified (its id), when verified. */
  keyId?: string;
  reason?: string;
  /** The signature manifests and their blobs, to store beside the image (devices can check again). */
  replica?: SignatureReplica;
  /** How the OCI 1.1 referrers were listed: the API, its tag fallback, or neither existed. */
  referrers?: 'api' | 'tag';
  /** Why some referrers were not read: more listed than sync.maxReferrers, or too large to be a signature. */
  referrerLimits?: string;
}

/** Where signatures are read from: the upstream (sync, the proxy), or the copies kept in the store. */
export type { SignatureSource } from './referrers.ts';

/** The store operations that keep signatures beside an image. */
export type SignatureStore = Pick<Store, 'hasBlob' | 'linkBlob' | 'tempPath' | 'commitVerifiedFile' | 'commitImage'>;

export interface CheckOptions {
  /** Referrers read per image at most (sync.maxReferrers). */
  maxReferrers?: number;
}

/** Signature payloads and configs are a few hundred bytes; anything this large is not one. */
const MAX_SIGNATURE_BLOB = 1 << 20;

/**
 * Finds the signatures of `digest` on the upstream both ways registries keep them — cosign's tag
 * scheme (`<repo>:sha256-<hex>.sig`) and OCI 1.1 referrers (the referrers API, or on 404 its tag
 * fallback `<repo>:sha256-<hex>`: manifests whose subject is the image) — and verifies them
 * offline with the policy's keys. Never throws for a missing or bad signature: that is the verdict.
 */
export async function checkSignatures(
  upstream: SignatureSource,
  policy: EffectivePolicy,
  image: { repository: string; digest: string },
  signal: AbortSignal,
  opts: CheckOptions = {},
): Promise<TrustResult> {
  const groups: SignatureReplica['groups'] = [];
  const tag = signatureTag(image.digest);
  const sig = await getIfExists(upstream, image.repository, tag, signal);
  if (sig) groups.push({ tags: [tag], manifests: [sig] });
  const referrers = await referrerSignatures(upstream, image, opts.maxReferrers ?? DEFAULT_MAX_REFERRERS, signal);
  if (referrers.group) groups.push(referrers.group);
  const via = { ...(referrers.via ? { referrers: referrers.via } : {}), ...(referrers.limits ? { referrerLimits: referrers.limits } : {}) };
  const capped = referrers.limits ? `; ${referrers.limits}` : '';
  const candidates = groups.flatMap((g) => g.manifests.filter((m) => !isIndex(m)));
  if (candidates.length === 0) {
    return { verdict: 'unsigned', mode: policy.mode, reason: `no signature at ${image.repository}:${tag} or among its OCI referrers${capped}`, ...via };
  }
  const blobs = new Map<string, Buffer>();
  const reasons: string[] = [];
  let keyId: string | undefined;
  let layers = 0;
  for (const m of candidates) {
    let parsed;
    try {
      parsed = parseSignatureManifest(m.body);
    } catch (err) {
      reasons.push((err as Error).message);
      continue;
    }
    for (const layer of parsed.layers) {
      layers++;
      const payload = await fetchSmallBlob(upstream, image.repository, layer, signal);
      blobs.set(layer.digest, payload);
      const check = verifyPayload(payload, layer.signature, policy.keys, image);
      if (check.ok) keyId ??= check.keyId;
      else reasons.push(check.reason);
    }
    for (const b of [...(parsed.config ? [parsed.config] : []), ...parsed.otherBlobs]) {
      if (!blobs.has(b.digest)) blobs.set(b.digest, await fetchSmallBlob(upstream, image.repository, b, signal));
    }
  }
  const replica = { groups, blobs };
  if (keyId) return { verdict: 'verified', mode: policy.mode, keyId, replica, ...via };
  if (layers === 0 && reasons.length === 0) return { verdict: 'unsigned', mode: policy.mode, reason: `${image.repository}:${tag} holds no simple-signing signature${capped}`, replica, ...via };
  return { verdict: 'invalid', mode: policy.mode, reason: `${reasons.join('; ')}${capped}`, replica, ...via };
}

interface ReferrerSignatures {
  via?: 'api' | 'tag';
  /** Referrers not read, and why. */
  limits?: string;
  group?: SignatureReplica['groups'][number];
}

function isIndex(m: FetchedManifest): boolean {
  return m.mediaType === 'application/vnd.oci.image.index.v1+json';
}

/**
 * The image's cosign signature referrers (artifactType application/vnd.dev.cosign.artifact.sig.v1+json)
 * whose subject is the image, fetched by digest. Through the fallback tag, its index is kept to be
 * replicated under that tag with them; through the API they are stored by digest (the satellite's
 * own referrers API lists them again from their subject).
 */
async function referrerSignatures(upstream: SignatureSource, image: { repository: string; digest: string }, max: number, signal: AbortSignal): Promise<ReferrerSignatures> {
  const { listing, manifests, skipped } = await fetchReferrers(upstream, image, COSIGN_SIGNATURE_ARTIFACT_TYPE, max, signal);
  if (!listing) return {};
  const out: ReferrerSignatures = { via: listing.via };
  const notes = [...skipped, ...(listing.overCap ? [listing.overCap] : [])];
  if (notes.length > 0) out.limits = notes.join('; ');
  if (manifests.length === 0) return out;
  out.group = listing.fallback ? { tags: [listing.fallback.tag], manifests: [...manifests, listing.fallback.index] } : { tags: [], manifests };
  return out;
}

/** The error code an enforce policy fails an image with, or undefined when it may be committed. */
export function refusal(result: TrustResult): string | undefined {
  if (result.mode !== 'enforce' || result.verdict === 'verified') return undefined;
  return result.verdict === 'unsigned' ? TrustErrorCode.required : TrustErrorCode.invalid;
}

async function fetchSmallBlob(upstream: SignatureSource, repo: string, want: { digest: string; size: number }, signal: AbortSignal): Promise<Buffer> {
  if (want.size > MAX_SIGNATURE_BLOB) throw new Error(`signature blob ${want.digest} is ${want.size} bytes (over ${MAX_SIGNATURE_BLOB})`);
  const res = await upstream.fetchBlob(repo, want.digest, { signal, size: want.size });
  const data = await readCapped(res.body, MAX_SIGNATURE_BLOB, () => new Error(`signature blob over ${MAX_SIGNATURE_BLOB} bytes`));
  // A payload that does not hash to its digest is not the one the manifest names: never trust it.
  if (digestOf(data) !== want.digest || data.length !== want.size) throw new Error(`signature blob ${want.digest} does not match its digest`);
  return data;
}


/**
 * Stores the signature manifests and their blobs beside the image under the same tags, so the
 * satellite serves `<repo>:sha256-<hex>.sig` (and the referrers fallback tag) like the upstream did;
 * referrers stored by digest are listed by the satellite's referrers API from their subject.
 */
export async function replicateSignatures(store: SignatureStore, repository: string, replica: SignatureReplica, log: Logger): Promise<void> {
  for (const [digest, data] of replica.blobs) {
    if (store.hasBlob(digest)) {
      await store.linkBlob(repository, digest);
      continue;
    }
    const tmp = store.tempPath();
    try {
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await store.commitVerifiedFile(tmp, digest, data.length, repository);
    } finally {
      await unlinkIfExists(tmp);
    }
  }
  for (const g of replica.groups) {
    const manifests = g.manifests.map((m) => ({ digest: m.digest, mediaType: m.mediaType, content: m.body }));
    await store.commitImage(repository, manifests, g.tags, { linkStoredBlobs: true, allowMissingChildren: true });
  }
  log.debug({ repository, tags: replica.groups.flatMap((g) => g.tags), manifests: replica.groups.flatMap((g) => g.manifests.map((m) => m.digest)) }, 'signatures replicated');
}
