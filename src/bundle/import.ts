import { createReadStream, createWriteStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { HashingStream } from '../lib/digest.ts';
import { unlinkIfExists } from '../lib/fs-atomic.ts';
import { parseManifest } from '../oci/manifest.ts';
import type { TrustPolicy } from '../protocol/desired-state.ts';
import type { ImageManifest, Store } from '../store/index.ts';
import { checkSignatures, refusal, replicateSignatures, type Verdict } from '../trust/check.ts';
import { policyFor } from '../trust/verify.ts';
import { blobPath, bundleError, LayoutSource, readBundleManifest } from './layout.ts';

export interface ImportReport {
  images: Array<{ repository: string; reference: string; digest: string; status: 'imported' | 'refused'; code?: string; reason?: string; signature?: Verdict }>;
  blobsImported: number;
  /** Already in the store (an earlier, interrupted import, or synced before): not read again. */
  blobsSkipped: number;
  bytesImported: number;
}

/**
 * Imports a bundle (bundle.json + OCI layout) into the store.
 * 1. Checks every file the contents list names that the store does not hold yet: present, its size,
 *    its SHA-256. One bad file refuses the whole bundle before anything is written, naming the digest.
 * 2. With a signature policy, checks each image's cosign signature from the bundle; enforce refuses it.
 * 3. Copies blobs into the store (hashed again while copied: the stick may change under us), each
 *    committed on its own, so a kill -9 or a pulled stick loses at most the blob in flight and a rerun
 *    skips what is stored. Then commits each image (manifests + tag) in one transaction: a device sees
 *    an image whole or not at all.
 */
export async function importBundle(store: Store, dir: string, opts: { policies?: TrustPolicy[] | undefined; log: Logger }): Promise<ImportReport> {
  const { log } = opts;
  const manifest = await readBundleManifest(dir);
  const listed = new Map(manifest.files.map((f) => [f.digest, f]));
  const report: ImportReport = { images: [], blobsImported: 0, blobsSkipped: 0, bytesImported: 0 };

  // 1. Every file, before anything is written.
  for (const f of manifest.files) {
    if (f.path.startsWith('blobs/') && blobPath('', f.digest) !== f.path) throw bundleError('BUNDLE_INVALID', `bundle.json lists ${f.path} for ${f.digest}`);
    if (f.path.startsWith('blobs/') && store.hasBlob(f.digest)) continue;
    await checkFile(join(dir, f.path), f);
  }
  const source = new LayoutSource(dir, manifest);
  const plans: Array<{ repository: string; reference: string; digest: string; manifests: ImageManifest[]; blobs: string[]; signed: boolean }> = [];
  for (const img of manifest.images) {
    const manifests: ImageManifest[] = [];
    const blobs = new Set<string>();
    const walk = async (digest: string) => {
      const entry = listed.get(digest);
      if (!entry) throw bundleError('BUNDLE_INVALID', `${img.repository}:${img.reference} needs manifest ${digest}, which bundle.json does not list`);
      const body = await readFile(blobPath(dir, digest));
      const parsed = parseManifest(body);
      for (const child of parsed.manifests) await walk(child.digest);
      for (const b of parsed.blobs) {
        if (!listed.has(b.digest) && !store.hasBlob(b.digest)) throw bundleError('BUNDLE_INVALID', `${img.repository}:${img.reference} needs blob ${b.digest}, which the bundle does not carry`);
        blobs.add(b.digest);
      }
      manifests.push({ digest, mediaType: parsed.mediaType, content: body });
    };
    await walk(img.digest);
    plans.push({ repository: img.repository, reference: img.reference, digest: img.digest, manifests, blobs: [...blobs], signed: img.signature !== undefined });
  }

  for (const plan of plans) {
    const entry: ImportReport['images'][number] = { repository: plan.repository, reference: plan.reference, digest: plan.digest, status: 'imported' };
    report.images.push(entry);
    // 2. Signatures, from the bundle itself: nothing is fetched.
    const policy = policyFor(opts.policies, plan.repository);
    const trust = policy ? await checkSignatures(source, policy, { repository: plan.repository, digest: plan.digest }, AbortSignal.timeout(60_000)) : undefined;
    if (trust) entry.signature = trust.verdict;
    const refused = trust && refusal(trust);
    if (refused) {
      Object.assign(entry, { status: 'refused', code: refused, reason: trust.reason ?? refused });
      log.warn({ repository: plan.repository, reference: plan.reference, code: refused, reason: trust.reason }, 'bundle image refused by signature policy');
      continue;
    }
    // 3. Blobs one by one, then the image in one commit.
    for (const digest of plan.blobs) {
      if (store.hasBlob(digest)) {
        report.blobsSkipped++;
        await store.linkBlob(plan.repository, digest);
        continue;
      }
      const f = listed.get(digest)!;
      await copyIntoStore(store, join(dir, f.path), f, plan.repository);
      report.blobsImported++;
      report.bytesImported += f.size;
    }
    await store.commitImage(plan.repository, plan.manifests, plan.reference.startsWith('sha256:') ? [] : [plan.reference], { allowMissingChildren: true, linkStoredBlobs: true });
    // Signatures travel with the image whether or not a policy applies here (devices may check them).
    const carried = trust ?? (plan.signed ? await checkSignatures(source, { mode: 'warn', keys: [], from: [] }, { repository: plan.repository, digest: plan.digest }, AbortSignal.timeout(60_000)) : undefined);
    if (carried?.replica) await replicateSignatures(store, plan.repository, carried.replica, log);
    log.info({ repository: plan.repository, reference: plan.reference, digest: plan.digest, signature: trust?.verdict }, 'image imported from bundle');
  }
  return report;
}

async function checkFile(path: string, want: { digest: string; size: number; path: string }): Promise<void> {
  const hash = new HashingStream();
  try {
    await pipeline(createReadStream(path), hash, async (source: AsyncIterable<Buffer>) => {
      for await (const _ of source);
    });
  } catch (err) {
    throw bundleError('BUNDLE_DAMAGED', `bundle file ${want.path} (${want.digest}) is missing or unreadable: ${(err as Error).message}`, { digest: want.digest, path: want.path });
  }
  if (hash.bytes !== want.size) {
    throw bundleError('BUNDLE_DAMAGED', `bundle file ${want.path} is ${hash.bytes} bytes, bundle.json says ${want.size} (${want.digest})`, { digest: want.digest, path: want.path });
  }
  const got = hash.digest();
  if (got !== want.digest) {
    throw bundleError('BUNDLE_DAMAGED', `bundle file ${want.path} does not hash to ${want.digest} (got ${got})`, { digest: want.digest, path: want.path });
  }
}

async function copyIntoStore(store: Store, path: string, want: { digest: string; size: number; path: string }, repo: string): Promise<void> {
  store.admitWrite(want.size, `blob ${want.digest}`);
  const tmp = store.tempPath();
  try {
    const hash = new HashingStream();
    const out = createWriteStream(tmp);
    await pipeline(createReadStream(path), hash, out);
    if (hash.digest() !== want.digest || hash.bytes !== want.size) {
      throw bundleError('BUNDLE_DAMAGED', `bundle file ${want.path} changed while importing: no longer ${want.digest}`, { digest: want.digest, path: want.path });
    }
    await fsyncFile(tmp);
    await store.commitVerifiedFile(tmp, want.digest, want.size, repo);
  } finally {
    await unlinkIfExists(tmp);
  }
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
