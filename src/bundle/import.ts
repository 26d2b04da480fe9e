import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { digestOf, HashingStream } from '../lib/digest.ts';
import { unlinkIfExists } from '../lib/fs-atomic.ts';
import { parseManifest } from '../oci/manifest.ts';
import { parseDesiredState, type DesiredState, type TrustPolicy } from '../protocol/desired-state.ts';
import type { BundleApplier, DesiredOutcome } from '../sync/adopt.ts';
import type { ImageManifest, Store } from '../store/index.ts';
import { checkSignatures, refusal, replicateSignatures, type Verdict } from '../trust/check.ts';
import { policyFor } from '../trust/verify.ts';
import { blobPath, bundleError, LayoutSource, MAX_MANIFEST_BYTES, openBundleFile, readContents, type BundleFile, type BundleManifest } from './layout.ts';
import { isPlainLayout, readPlainLayout } from './oci-layout.ts';
import { checkContentsSignature, type ContentsVerdict, type SignatureRequirement } from './signature.ts';

export interface ImportReport {
  /** What the directory held: a bundle (bundle.json) or a plain OCI image layout (unsigned, no desired state). */
  format: 'bundle' | 'oci-layout';
  images: Array<{ repository: string; reference: string; digest: string; status: 'imported' | 'refused'; code?: string; reason?: string; signature?: Verdict }>;
  blobsImported: number;
  /** Already in the store (an earlier, interrupted import, or synced before): not read again. */
  blobsSkipped: number;
  bytesImported: number;
  /** bundle.sig checked against Ground Control's key(s): verified (keyId), unsigned, or unverified (no key known). */
  bundleSignature: ContentsVerdict;
  /** What became of the desired state the bundle carries (absent: it carries none). */
  desired?: DesiredOutcome;
}

/**
 * Imports a bundle (bundle.json + OCI layout) into the store; or a plain OCI image layout (no
 * bundle.json), whose contents list is derived from its descriptors (oci-layout.ts) and which is
 * unsigned: refused when signed bundles are required, never a desired state.
 * 1. Checks every file the contents list names that the store does not hold yet: present, its size,
 *    its SHA-256. One bad file refuses the whole bundle before anything is written, naming the digest.
 * 2. With a signature policy, checks each image's cosign signature from the bundle; enforce refuses it.
 * 3. Copies blobs into the store (hashed again while copied: the stick may change under us), each
 *    committed on its own, so a kill -9 or a pulled stick loses at most the blob in flight and a rerun
 *    skips what is stored. Then commits each image (manifests + tag) in one transaction: a device sees
 *    an image whole or not at all.
 */
export async function importBundle(
  store: Store,
  dir: string,
  opts: {
    /** Signature policies for the images; default: the applier's (the bundle's own desired state when it will be in force). */
    policies?: TrustPolicy[] | undefined;
    signatures?: SignatureRequirement | undefined;
    /** Applies the bundle's desired state (sync/adopt.ts); without it the desired state is only reported. */
    applier?: BundleApplier | undefined;
    /** Repository of a plain layout's images named by a bare tag (oci-layout.ts layoutRef). */
    repository?: string | undefined;
    log: Logger;
  },
): Promise<ImportReport> {
  const { log } = opts;
  const signatures = opts.signatures ?? { keys: [], required: false };
  let manifest: BundleManifest;
  let bundleSignature: ContentsVerdict;
  let format: ImportReport['format'] = 'bundle';
  const hasContents = (await stat(join(dir, 'bundle.json')).catch(() => undefined)) !== undefined;
  if (!hasContents && !(await isPlainLayout(dir))) {
    throw bundleError('BUNDLE_INVALID', `${dir} is neither a bundle (no bundle.json: missing, or an unfinished create) nor an OCI image layout (oci-layout and index.json)`);
  }
  if (!hasContents) {
    // A plain OCI layout (skopeo's oci:DIR:REF): its contents list is derived from its own descriptors.
    if (signatures.required) {
      throw bundleError('BUNDLE_UNSIGNED', `${dir} is a plain OCI image layout (no bundle.json, no bundle.sig): nothing signs it, and this satellite requires signed bundles (sync.requireSignedBundles)`);
    }
    format = 'oci-layout';
    manifest = await readPlainLayout(dir, { repository: opts.repository });
    bundleSignature = { status: 'unsigned' };
  } else {
    const contents = await readContents(dir);
    manifest = contents.manifest;
    // 0. The contents list is Ground Control's (bundle.sig over these very bytes), before anything it says is used.
    bundleSignature = await checkContentsSignature(dir, contents.bytes, signatures);
  }
  const listed = new Map(manifest.files.map((f) => [f.digest, f]));
  const report: ImportReport = { format, images: [], blobsImported: 0, blobsSkipped: 0, bytesImported: 0, bundleSignature };
  // The desired state counts only when Ground Control signed it: it names the upstream and the trust policies.
  let desired: DesiredState | undefined;
  if (manifest.desired !== undefined) {
    const generation = (manifest.desired as { generation?: unknown } | null)?.generation;
    if (bundleSignature.status !== 'verified') {
      report.desired = {
        generation: Number.isSafeInteger(generation) ? (generation as number) : null,
        status: 'ignored',
        reason: `the bundle is ${bundleSignature.status}: its desired state is applied only when signed by a Ground Control key this satellite knows`,
      };
    } else {
      try {
        desired = parseDesiredState(manifest.desired, 'bundle.json desired state');
      } catch (err) {
        throw bundleError('BUNDLE_INVALID', (err as Error).message);
      }
    }
  }
  const policies = opts.policies ?? opts.applier?.policies(desired);

  // 1. Every file, before anything is written.
  for (const f of manifest.files) {
    if (f.path.startsWith('blobs/') && blobPath('', f.digest) !== f.path) throw bundleError('BUNDLE_INVALID', `bundle.json lists ${f.path} for ${f.digest}`);
    if (f.path.startsWith('blobs/') && store.hasBlob(f.digest)) continue;
    await checkFile(dir, f);
  }
  const source = new LayoutSource(dir, manifest);
  const plans: Array<{ repository: string; reference: string; digest: string; manifests: ImageManifest[]; blobs: string[]; signed: boolean }> = [];
  for (const img of manifest.images) {
    const manifests: ImageManifest[] = [];
    const blobs = new Set<string>();
    const walk = async (digest: string, top: boolean) => {
      const entry = listed.get(digest);
      // A child an index names but the bundle does not carry: a platform the satellite does not keep.
      if (!entry && !top) return;
      if (!entry) throw bundleError('BUNDLE_INVALID', `${img.repository}:${img.reference} needs manifest ${digest}, which bundle.json does not list`);
      // Read here whether or not step 1 checked it (the store may hold the digest): checked again, capped.
      if (entry.size > MAX_MANIFEST_BYTES) throw bundleError('BUNDLE_INVALID', `manifest ${digest} is ${entry.size} bytes, more than ${MAX_MANIFEST_BYTES}`);
      // Sized before it is read: a file larger than its entry is never buffered.
      const onDisk = (await stat(blobPath(dir, digest)).catch(() => undefined))?.size;
      if (onDisk !== entry.size) throw bundleError('BUNDLE_DAMAGED', `bundle file ${entry.path} is ${onDisk ?? 'missing'}${onDisk === undefined ? '' : ' bytes'}, the list says ${entry.size} (${digest})`, { digest, path: entry.path });
      const body = await readFile(blobPath(dir, digest));
      if (body.length !== entry.size || digestOf(body) !== digest) throw bundleError('BUNDLE_DAMAGED', `bundle file ${entry.path} does not hash to ${digest}`, { digest, path: entry.path });
      const parsed = parseManifest(body);
      for (const child of parsed.manifests) await walk(child.digest, false);
      for (const b of parsed.blobs) {
        if (!listed.has(b.digest) && !store.hasBlob(b.digest)) throw bundleError('BUNDLE_INVALID', `${img.repository}:${img.reference} needs blob ${b.digest}, which the bundle does not carry`);
        blobs.add(b.digest);
      }
      manifests.push({ digest, mediaType: parsed.mediaType, content: body });
    };
    await walk(img.digest, true);
    plans.push({ repository: img.repository, reference: img.reference, digest: img.digest, manifests, blobs: [...blobs], signed: img.signature !== undefined || (img.referrers?.length ?? 0) > 0 });
  }

  for (const plan of plans) {
    const entry: ImportReport['images'][number] = { repository: plan.repository, reference: plan.reference, digest: plan.digest, status: 'imported' };
    report.images.push(entry);
    // 2. Signatures, from the bundle itself: nothing is fetched.
    const policy = policyFor(policies, plan.repository);
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
      await copyIntoStore(store, dir, f, plan.repository);
      report.blobsImported++;
      report.bytesImported += f.size;
    }
    await store.commitImage(plan.repository, plan.manifests, plan.reference.startsWith('sha256:') ? [] : [plan.reference], { allowMissingChildren: true, linkStoredBlobs: true });
    // Signatures travel with the image whether or not a policy applies here (devices may check them).
    const carried = trust ?? (plan.signed ? await checkSignatures(source, { mode: 'warn', keys: [], from: [] }, { repository: plan.repository, digest: plan.digest }, AbortSignal.timeout(60_000)) : undefined);
    if (carried?.replica) await replicateSignatures(store, plan.repository, carried.replica, log);
    log.info({ repository: plan.repository, reference: plan.reference, digest: plan.digest, signature: trust?.verdict }, 'image imported from bundle');
  }
  // 4. The desired state, as a sync that had fetched these images would leave it.
  if (desired && opts.applier) {
    report.desired = await opts.applier.apply(desired, report.images);
    log.info({ ...report.desired }, 'bundle desired state');
  } else if (desired) report.desired = { generation: desired.generation, status: 'ignored', reason: 'imported without a sync record (no applier)' };
  return report;
}

/** Reads a file (each of its parts in order, when split) and checks sizes and SHA-256s against the list. */
async function checkFile(dir: string, want: BundleFile): Promise<void> {
  const damaged = (what: string, path = want.path) => bundleError('BUNDLE_DAMAGED', `bundle file ${path} (${want.digest}) ${what}`, { digest: want.digest, path });
  const whole = createHash('sha256');
  let bytes = 0;
  for (const part of want.parts ?? [want]) {
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of createReadStream(join(dir, part.path)) as AsyncIterable<Buffer>) {
        hash.update(chunk);
        whole.update(chunk);
        size += chunk.length;
      }
    } catch (err) {
      throw damaged(`is missing or unreadable: ${(err as Error).message}`, part.path);
    }
    if (size !== part.size) throw bundleError('BUNDLE_DAMAGED', `bundle file ${part.path} is ${size} bytes, bundle.json says ${part.size} (${want.digest})`, { digest: want.digest, path: part.path });
    if (want.parts && `sha256:${hash.digest('hex')}` !== part.digest) throw damaged(`does not hash to its part digest ${part.digest}`, part.path);
    bytes += size;
  }
  const got = `sha256:${whole.digest('hex')}`;
  if (bytes !== want.size || got !== want.digest) throw bundleError('BUNDLE_DAMAGED', `bundle file ${want.path} does not hash to ${want.digest} (got ${got})`, { digest: want.digest, path: want.path });
}

async function copyIntoStore(store: Store, dir: string, want: BundleFile, repo: string): Promise<void> {
  store.admitWrite(want.size, `blob ${want.digest}`);
  const tmp = store.tempPath();
  try {
    const hash = new HashingStream();
    const out = createWriteStream(tmp);
    await pipeline(openBundleFile(dir, want), hash, out);
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
