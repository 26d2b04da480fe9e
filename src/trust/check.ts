import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { digestOf } from '../lib/digest.ts';
import { errorCode } from '../lib/errors.ts';
import { unlinkIfExists } from '../lib/fs-atomic.ts';
import type { Store } from '../store/index.ts';
import type { UpstreamPort } from '../sync/upstream-port.ts';
import { parseSignatureManifest, signatureTag } from './cosign.ts';
import { TrustErrorCode } from './errors.ts';
import { verifyPayload, type EffectivePolicy } from './verify.ts';

/** verified: a signature checks out; unsigned: none found; invalid: found, none verifies. */
export type Verdict = 'verified' | 'unsigned' | 'invalid';

export interface TrustResult {
  verdict: Verdict;
  mode: 'enforce' | 'warn';
  /** The key that verified (its id), when verified. */
  keyId?: string;
  reason?: string;
  /** The signature manifest and its blobs, to store beside the image (devices can check again). */
  replica?: { tag: string; digest: string; mediaType: string; body: Buffer; blobs: Map<string, Buffer> };
}

/** Signature payloads and configs are a few hundred bytes; anything this large is not one. */
const MAX_SIGNATURE_BLOB = 1 << 20;

/**
 * Finds the cosign tag-scheme signatures of `digest` on the upstream and verifies them offline with
 * the policy's keys. Never throws for a missing or bad signature: that is the verdict.
 */
export async function checkSignatures(
  upstream: UpstreamPort,
  policy: EffectivePolicy,
  image: { repository: string; digest: string },
  signal: AbortSignal,
): Promise<TrustResult> {
  const tag = signatureTag(image.digest);
  let sig: { digest: string; mediaType: string; body: Buffer };
  try {
    sig = await upstream.getManifest(image.repository, tag, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    if (errorCode(err) === 'UPSTREAM_NOT_FOUND') return { verdict: 'unsigned', mode: policy.mode, reason: `no signature at ${image.repository}:${tag}` };
    throw err;
  }
  let parsed;
  try {
    parsed = parseSignatureManifest(sig.body);
  } catch (err) {
    return { verdict: 'invalid', mode: policy.mode, reason: (err as Error).message };
  }
  if (parsed.layers.length === 0) return { verdict: 'unsigned', mode: policy.mode, reason: `${image.repository}:${tag} holds no simple-signing signature` };
  const blobs = new Map<string, Buffer>();
  const reasons: string[] = [];
  let keyId: string | undefined;
  for (const layer of parsed.layers) {
    const payload = await fetchSmallBlob(upstream, image.repository, layer, signal);
    blobs.set(layer.digest, payload);
    const check = verifyPayload(payload, layer.signature, policy.keys, image);
    if (check.ok) {
      keyId ??= check.keyId;
    } else reasons.push(check.reason);
  }
  for (const b of [...(parsed.config ? [parsed.config] : []), ...parsed.otherBlobs]) {
    if (!blobs.has(b.digest)) blobs.set(b.digest, await fetchSmallBlob(upstream, image.repository, b, signal));
  }
  const replica = { tag, digest: sig.digest, mediaType: sig.mediaType, body: sig.body, blobs };
  if (keyId) return { verdict: 'verified', mode: policy.mode, keyId, replica };
  return { verdict: 'invalid', mode: policy.mode, reason: reasons.join('; '), replica };
}

/** The error code an enforce policy fails an image with, or undefined when it may be committed. */
export function refusal(result: TrustResult): string | undefined {
  if (result.mode !== 'enforce' || result.verdict === 'verified') return undefined;
  return result.verdict === 'unsigned' ? TrustErrorCode.required : TrustErrorCode.invalid;
}

async function fetchSmallBlob(upstream: UpstreamPort, repo: string, want: { digest: string; size: number }, signal: AbortSignal): Promise<Buffer> {
  if (want.size > MAX_SIGNATURE_BLOB) throw new Error(`signature blob ${want.digest} is ${want.size} bytes (over ${MAX_SIGNATURE_BLOB})`);
  const res = await upstream.fetchBlob(repo, want.digest, { signal, size: want.size });
  const data = await readAll(res.body, MAX_SIGNATURE_BLOB);
  // A payload that does not hash to its digest is not the one the manifest names: never trust it.
  if (digestOf(data) !== want.digest || data.length !== want.size) throw new Error(`signature blob ${want.digest} does not match its digest`);
  return data;
}

async function readAll(body: Readable, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += (chunk as Buffer).length;
    if (n > cap) {
      body.destroy();
      throw new Error(`signature blob over ${cap} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Stores the signature manifest and its blobs beside the image under the same tag, so the satellite
 * serves `<repo>:sha256-<hex>.sig` like the upstream did.
 */
export async function replicateSignatures(store: Store, repository: string, replica: NonNullable<TrustResult['replica']>, log: Logger): Promise<void> {
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
  await store.commitImage(repository, [{ digest: replica.digest, mediaType: replica.mediaType, content: replica.body }], [replica.tag], { linkStoredBlobs: true });
  log.debug({ repository, tag: replica.tag }, 'signatures replicated');
}
