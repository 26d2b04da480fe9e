import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { digestOf, HashingStream } from '../lib/digest.ts';
import { errorCode } from '../lib/errors.ts';
import { parseManifest } from '../oci/manifest.ts';
import type { UpstreamPort } from '../sync/upstream-port.ts';
import type { ReferrerDescriptor } from '../oci/referrers.ts';
import { COSIGN_SIGNATURE_ARTIFACT_TYPE, parseSignatureManifest, signatureTag } from '../trust/cosign.ts';
import { DEFAULT_MAX_REFERRERS, fetchReferrers } from '../trust/referrers.ts';
import { selectChildren } from '../sync/platform.ts';
import { blobPath, BUNDLE_FORMAT, bundleError, REF_NAME, refName, type BundleFile, type BundleImage, type BundleManifest } from './layout.ts';
import { PartWriter } from './parts.ts';
import { SIGNATURE_FILE, signContents, type BundleSigner } from './signature.ts';

/** Files larger than this are split into parts by default: FAT32 holds files up to 4 GiB - 1. */
export const DEFAULT_PART_SIZE = 2 * 1024 ** 3;
/** Manifests (4 MiB at most) are never split; parts smaller than this make no sense. */
export const MIN_PART_SIZE = 1024 ** 2;

export interface CreateBundleOptions {
  /** A registry: the upstream, or a satellite that holds the images. */
  source: UpstreamPort;
  images: Array<{ repository: string; reference: string; platforms?: string[] | undefined }>;
  outDir: string;
  log: Logger;
  signal?: AbortSignal;
  /** Blobs larger than this are written as parts `<hex>.000`, `.001`, ... (default DEFAULT_PART_SIZE). */
  partSize?: number;
  /** Signs bundle.json into bundle.sig (Ground Control's key). */
  signer?: BundleSigner;
  /** Carried in bundle.json: the desired state the bundle fills. */
  desired?: unknown;
  createdBy?: string;
  /**
   * A child manifest of an index the source does not have: 'fail' (an upstream must have every one),
   * or 'skip' (a satellite's store keeps only the platforms it syncs; the import skips them the same way).
   */
  absentChildren?: 'fail' | 'skip';
}

export interface CreateBundleReport {
  images: number;
  blobs: number;
  bytes: number;
  /** Files written as parts (blobs larger than the part size). */
  parts: number;
  /** keyId of the signature, null when unsigned. */
  signed: string | null;
}

/**
 * Writes a bundle: every manifest and blob of the images (all platforms of an index) and their
 * cosign signatures, each blob once, then index.json and bundle.json last (a bundle without
 * bundle.json is unfinished and an import refuses it).
 */
export async function createBundle(opts: CreateBundleOptions): Promise<CreateBundleReport> {
  const { source, outDir, log } = opts;
  const signal = opts.signal ?? new AbortController().signal;
  await mkdir(join(outDir, 'blobs', 'sha256'), { recursive: true });
  const partSize = opts.partSize ?? DEFAULT_PART_SIZE;
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE) throw bundleError('BUNDLE_INVALID', `part size ${partSize} is below ${MIN_PART_SIZE} bytes`);
  await rm(join(outDir, 'bundle.json'), { force: true });
  await rm(join(outDir, SIGNATURE_FILE), { force: true });
  // A stale index.json would make the unfinished bundle look like a plain OCI layout to an import.
  await rm(join(outDir, 'index.json'), { force: true });
  const files = new Map<string, BundleFile>();
  const index: Array<{ mediaType: string; digest: string; size: number; annotations: Record<string, string> }> = [];
  const images: BundleImage[] = [];

  const putBytes = async (digest: string, data: Buffer) => {
    if (files.has(digest)) return;
    const path = blobPath(outDir, digest);
    await writeFile(`${path}.part`, data);
    await rename(`${path}.part`, path);
    files.set(digest, { path: relPath(digest), digest, size: data.length });
  };
  const putBlob = async (repo: string, blob: { digest: string; size: number }) => {
    if (files.has(blob.digest)) return;
    const want = { digest: blob.digest, size: blob.size };
    const path = blobPath(outDir, want.digest);
    const split = want.size > partSize;
    // Written by an earlier, interrupted create: kept (the import checks every digest anyway).
    const kept = split ? await keptParts(outDir, want, partSize) : (await stat(path).catch(() => undefined))?.size === want.size ? {} : undefined;
    if (kept) {
      files.set(want.digest, { path: relPath(want.digest), ...want, ...kept });
      return;
    }
    const res = await source.fetchBlob(repo, want.digest, { signal, size: want.size });
    const hash = new HashingStream();
    const out = split ? new PartWriter(path, partSize) : createWriteStream(`${path}.part`);
    try {
      await pipeline(res.body, hash, out, { signal });
      if (hash.digest() !== want.digest || hash.bytes !== want.size) throw bundleError('BUNDLE_DAMAGED', `blob ${want.digest} from ${repo} did not match its digest`);
    } catch (err) {
      if (out instanceof PartWriter) await out.discard();
      else await rm(`${path}.part`, { force: true });
      throw err;
    }
    if (out instanceof PartWriter) {
      await out.commit();
      files.set(want.digest, { path: relPath(want.digest), ...want, parts: out.parts.map((p, i) => ({ ...p, path: PartWriter.partPath(relPath(want.digest), i) })) });
    } else {
      await rename(`${path}.part`, path);
      files.set(want.digest, { path: relPath(want.digest), ...want });
    }
  };
  const putManifestTree = async (repo: string, m: { digest: string; mediaType: string; body: Buffer }, platforms: string[] | undefined) => {
    const parsed = parseManifest(m.body, m.mediaType);
    // Only the platforms the satellite keeps; the index itself is carried whole (as sync stores it).
    for (const child of selectChildren(parsed.manifests, platforms)) {
      let m: { digest: string; mediaType: string; body: Buffer };
      try {
        m = await source.getManifest(repo, child.digest, signal);
      } catch (err) {
        if (opts.absentChildren === 'skip' && errorCode(err) === 'UPSTREAM_NOT_FOUND') continue;
        throw err;
      }
      await putManifestTree(repo, m, undefined);
    }
    for (const b of parsed.blobs) await putBlob(repo, b);
    await putBytes(m.digest, m.body);
    return parsed.mediaType;
  };

  for (const ref of opts.images) {
    const top = await source.getManifest(ref.repository, ref.reference, signal);
    const mediaType = await putManifestTree(ref.repository, top, ref.platforms);
    const image: BundleImage = { repository: ref.repository, reference: ref.reference, digest: top.digest, mediaType };
    index.push({ mediaType, digest: top.digest, size: top.body.length, annotations: { [REF_NAME]: refName(ref.repository, ref.reference) } });
    const tag = signatureTag(top.digest);
    try {
      const sig = await source.getManifest(ref.repository, tag, signal);
      const parsed = parseSignatureManifest(sig.body);
      for (const b of [...(parsed.config ? [parsed.config] : []), ...parsed.layers, ...parsed.otherBlobs]) await putBlob(ref.repository, b);
      await putBytes(sig.digest, sig.body);
      image.signature = { tag, digest: sig.digest };
      index.push({ mediaType: sig.mediaType, digest: sig.digest, size: sig.body.length, annotations: { [REF_NAME]: refName(ref.repository, tag) } });
    } catch (err) {
      if (errorCode(err) !== 'UPSTREAM_NOT_FOUND') throw err;
    }
    const referrers = await signatureReferrers(source, ref.repository, top.digest, signal);
    for (const r of referrers) {
      for (const b of r.blobs) await putBlob(ref.repository, b);
      await putBytes(r.manifest.digest, r.manifest.body);
    }
    if (referrers.length > 0) image.referrers = referrers.map((r) => r.descriptor);
    images.push(image);
    log.info({ repository: ref.repository, reference: ref.reference, digest: top.digest, signed: image.signature !== undefined, referrers: referrers.length }, 'image added to bundle');
  }

  const ociLayout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const indexJson = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: index }, null, 1));
  await writeFile(join(outDir, 'oci-layout'), ociLayout);
  await writeFile(join(outDir, 'index.json'), indexJson);
  const list: BundleManifest['files'] = [
    { path: 'oci-layout', digest: digestOf(ociLayout), size: ociLayout.length },
    { path: 'index.json', digest: digestOf(indexJson), size: indexJson.length },
    ...files.values(),
  ];
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    createdAt: new Date().toISOString(),
    ...(opts.createdBy ? { createdBy: opts.createdBy } : {}),
    images,
    files: list,
    ...(opts.desired !== undefined ? { desired: opts.desired } : {}),
  };
  const contents = Buffer.from(JSON.stringify(manifest, null, 1));
  // The signature first: bundle.json (last) marks the bundle finished, and it is signed by then.
  if (opts.signer) await writeFile(join(outDir, SIGNATURE_FILE), signContents(contents, opts.signer));
  await writeFile(join(outDir, 'bundle.json.part'), contents);
  await rename(join(outDir, 'bundle.json.part'), join(outDir, 'bundle.json'));
  const bytes = [...files.values()].reduce((n, f) => n + f.size, 0);
  return { images: images.length, blobs: files.size, bytes, parts: list.reduce((n, f) => n + (f.parts?.length ?? 0), 0), signed: opts.signer?.keyId ?? null };
}

/**
 * The image's cosign signatures held as OCI 1.1 referrers (the source's referrers API, or its tag
 * fallback), read by digest: only manifests whose subject is the image, of a signature's size.
 * Carried by digest (not the fallback index: the importer's referrers API lists them from their subject).
 */
async function signatureReferrers(
  source: UpstreamPort,
  repository: string,
  digest: string,
  signal: AbortSignal,
): Promise<Array<{ descriptor: ReferrerDescriptor; manifest: { digest: string; body: Buffer }; blobs: Array<{ digest: string; size: number }> }>> {
  const { manifests } = await fetchReferrers(source, { repository, digest }, COSIGN_SIGNATURE_ARTIFACT_TYPE, DEFAULT_MAX_REFERRERS, signal);
  return manifests.map((m) => {
    const parsed = parseSignatureManifest(m.body);
    return {
      descriptor: { mediaType: m.mediaType, digest: m.digest, size: m.body.length, artifactType: COSIGN_SIGNATURE_ARTIFACT_TYPE },
      manifest: m,
      blobs: [...(parsed.config ? [parsed.config] : []), ...parsed.layers, ...parsed.otherBlobs],
    };
  });
}

function relPath(digest: string): string {
  return blobPath('', digest).replace(/^\//, '');
}

/** The parts an earlier create wrote for this blob, re-hashed locally, if all are there and make the blob. */
async function keptParts(outDir: string, want: { digest: string; size: number }, partSize: number): Promise<Pick<BundleFile, 'parts'> | undefined> {
  const parts: NonNullable<BundleFile['parts']> = [];
  const whole = createHash('sha256');
  for (let i = 0, left = want.size; left > 0; i++, left -= partSize) {
    const p = PartWriter.partPath(blobPath(outDir, want.digest), i);
    const size = Math.min(partSize, left);
    if ((await stat(p).catch(() => undefined))?.size !== size) return undefined;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(p) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      whole.update(chunk);
    }
    parts.push({ path: PartWriter.partPath(relPath(want.digest), i), digest: `sha256:${hash.digest('hex')}`, size });
  }
  return `sha256:${whole.digest('hex')}` === want.digest ? { parts } : undefined;
}
