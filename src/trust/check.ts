import { open } from 'node:fs/promises';
import type { Logger } from 'pino';
import { digestOf } from '../lib/digest.ts';
import { errorCode } from '../lib/errors.ts';
import { unlinkIfExists } from '../lib/fs-atomic.ts';
import type { Store } from '../store/index.ts';
import type { UpstreamPort } from '../sync/upstream-port.ts';
import { COSIGN_SIGNATURE_ARTIFACT_TYPE, parseSignatureManifest, signatureTag } from './cosign.ts';
import { TrustErrorCode } from './errors.ts';
import { verifyPayload, type EffectivePolicy } from './verify.ts';
import { readCapped } from '../lib/read-capped.ts';

/** verified: a signature checks out; unsigned: none found; invalid: found, none verifies. */
export type Verdict = 'verified' | 'unsigned' | 'invalid';

interface FetchedManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
}

/** Signature manifests to store beside the image: each group committed together under its tag. */
export interface SignatureReplica {
  groups: Array<{ tag: string; manifests: FetchedManifest[] }>;
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
}

/** Where signatures are read from: the upstream (sync, the proxy), or the copies kept in the store. */
export type SignatureSource = Pick<UpstreamPort, 'getManifest' | 'fetchBlob'>;

/** The store operations that keep signatures beside an image. */
export type SignatureStore = Pick<Store, 'hasBlob' | 'linkBlob' | 'tempPath' | 'commitVerifiedFile' | 'commitImage'>;

/** Signature payloads and configs are a few hundred bytes; anything this large is not one. */
const MAX_SIGNATURE_BLOB = 1 << 20;

/**
 * Finds the signatures of `digest` on the upstream both ways registries keep them — cosign's tag
 * scheme (`<repo>:sha256-<hex>.sig`) and OCI 1.1 referrers through the tag fallback
 * (`<repo>:sha256-<hex>`, an index of manifests whose subject is the image) — and verifies them
 * offline with the policy's keys. Never throws for a missing or bad signature: that is the verdict.
 */
export async function checkSignatures(
  upstream: SignatureSource,
  policy: EffectivePolicy,
  image: { repository: string; digest: string },
  signal: AbortSignal,
): Promise<TrustResult> {
  const groups: SignatureReplica['groups'] = [];
  const tag = signatureTag(image.digest);
  const sig = await getIfExists(upstream, image.repository, tag, signal);
  if (sig) groups.push({ tag, manifests: [sig] });
  const referrers = await referrerSignatures(upstream, image, signal);
  if (referrers) groups.push(referrers);
  const candidates = groups.flatMap((g) => g.manifests.filter((m) => !isIndex(m)));
  if (candidates.length === 0) return { verdict: 'unsigned', mode: policy.mode, reason: `no signature at ${image.repository}:${tag} or among its OCI referrers` };
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
  if (keyId) return { verdict: 'verified', mode: policy.mode, keyId, replica };
  if (layers === 0 && reasons.length === 0) return { verdict: 'unsigned', mode: policy.mode, reason: `${image.repository}:${tag} holds no simple-signing signature`, replica };
  return { verdict: 'invalid', mode: policy.mode, reason: reasons.join('; '), replica };
}

async function getIfExists(upstream: SignatureSource, repo: string, reference: string, signal: AbortSignal): Promise<FetchedManifest | undefined> {
  try {
    return await upstream.getManifest(repo, reference, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    if (errorCode(err) === 'UPSTREAM_NOT_FOUND') return undefined;
    throw err;
  }
}

function isIndex(m: FetchedManifest): boolean {
  return m.mediaType === 'application/vnd.oci.image.index.v1+json';
}

/**
 * dist-spec "referrers tag schema": `<alg>-<hex>` tags an index listing the image's referrers. The
 * cosign signature referrers (artifactType application/vnd.dev.cosign.artifact.sig.v1+json) whose
 * subject is the image are fetched; the index is kept to be replicated with them.
 */
async function referrerSignatures(upstream: SignatureSource, image: { repository: string; digest: string }, signal: AbortSignal) {
  const tag = image.digest.replace(':', '-');
  const index = await getIfExists(upstream, image.repository, tag, signal);
  if (!index) return undefined;
  let listed: Array<{ digest?: unknown; artifactType?: unknown }> = [];
  try {
    listed = (JSON.parse(index.body.toString('utf8')) as { manifests?: typeof listed }).manifests ?? [];
  } catch {
    return undefined;
  }
  const manifests: FetchedManifest[] = [];
  for (const d of listed.slice(0, 64)) {
    if (d.artifactType !== COSIGN_SIGNATURE_ARTIFACT_TYPE || typeof d.digest !== 'string') continue;
    const m = await getIfExists(upstream, image.repository, d.digest, signal);
    if (!m) continue;
    // Only a referrer of this image: its subject names the digest being checked.
    const subject = (JSON.parse(m.body.toString('utf8')) as { subject?: { digest?: unknown } }).subject?.digest;
    if (subject === image.digest) manifests.push(m);
  }
  if (manifests.length === 0) return undefined;
  return { tag, manifests: [...manifests, { ...index, mediaType: 'application/vnd.oci.image.index.v1+json' }] };
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
 * satellite serves `<repo>:sha256-<hex>.sig` (and the referrers fallback tag) like the upstream did.
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
    await store.commitImage(repository, manifests, [g.tag], { linkStoredBlobs: true, allowMissingChildren: true });
  }
  log.debug({ repository, tags: replica.groups.map((g) => g.tag) }, 'signatures replicated');
}
