import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { digestOf, HashingStream } from '../lib/digest.ts';
import { errorCode } from '../lib/errors.ts';
import { parseManifest } from '../oci/manifest.ts';
import type { UpstreamPort } from '../sync/upstream-port.ts';
import { parseSignatureManifest, signatureTag } from '../trust/cosign.ts';
import { blobPath, BUNDLE_FORMAT, bundleError, REF_NAME, refName, type BundleImage, type BundleManifest } from './layout.ts';

export interface CreateBundleOptions {
  /** A registry: the upstream, or a satellite that holds the images. */
  source: UpstreamPort;
  images: Array<{ repository: string; reference: string }>;
  outDir: string;
  log: Logger;
  signal?: AbortSignal;
}

export interface CreateBundleReport {
  images: number;
  blobs: number;
  bytes: number;
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
  await rm(join(outDir, 'bundle.json'), { force: true });
  const files = new Map<string, { digest: string; size: number }>();
  const index: Array<{ mediaType: string; digest: string; size: number; annotations: Record<string, string> }> = [];
  const images: BundleImage[] = [];

  const putBytes = async (digest: string, data: Buffer) => {
    if (files.has(digest)) return;
    const path = blobPath(outDir, digest);
    await writeFile(`${path}.part`, data);
    await rename(`${path}.part`, path);
    files.set(digest, { digest, size: data.length });
  };
  const putBlob = async (repo: string, want: { digest: string; size: number }) => {
    if (files.has(want.digest)) return;
    const path = blobPath(outDir, want.digest);
    const have = await stat(path).catch(() => undefined);
    // Written by an earlier, interrupted create: kept (the import checks every digest anyway).
    if (have?.size !== want.size) {
      const res = await source.fetchBlob(repo, want.digest, { signal, size: want.size });
      const hash = new HashingStream();
      await pipeline(res.body, hash, createWriteStream(`${path}.part`), { signal });
      if (hash.digest() !== want.digest || hash.bytes !== want.size) {
        await rm(`${path}.part`, { force: true });
        throw bundleError('BUNDLE_DAMAGED', `blob ${want.digest} from ${repo} did not match its digest`);
      }
      await rename(`${path}.part`, path);
    }
    files.set(want.digest, want);
  };
  const putManifestTree = async (repo: string, m: { digest: string; mediaType: string; body: Buffer }) => {
    const parsed = parseManifest(m.body, m.mediaType);
    for (const child of parsed.manifests) await putManifestTree(repo, await source.getManifest(repo, child.digest, signal));
    for (const b of parsed.blobs) await putBlob(repo, b);
    await putBytes(m.digest, m.body);
    return parsed.mediaType;
  };

  for (const ref of opts.images) {
    const top = await source.getManifest(ref.repository, ref.reference, signal);
    const mediaType = await putManifestTree(ref.repository, top);
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
    images.push(image);
    log.info({ repository: ref.repository, reference: ref.reference, digest: top.digest, signed: image.signature !== undefined }, 'image added to bundle');
  }

  const ociLayout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const indexJson = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: index }, null, 1));
  await writeFile(join(outDir, 'oci-layout'), ociLayout);
  await writeFile(join(outDir, 'index.json'), indexJson);
  const list: BundleManifest['files'] = [
    { path: 'oci-layout', digest: digestOf(ociLayout), size: ociLayout.length },
    { path: 'index.json', digest: digestOf(indexJson), size: indexJson.length },
    ...[...files.values()].map((f) => ({ path: blobPath('', f.digest).replace(/^\//, ''), digest: f.digest, size: f.size })),
  ];
  const manifest: BundleManifest = { format: BUNDLE_FORMAT, createdAt: new Date().toISOString(), images, files: list };
  await writeFile(join(outDir, 'bundle.json.part'), JSON.stringify(manifest, null, 1));
  await rename(join(outDir, 'bundle.json.part'), join(outDir, 'bundle.json'));
  const bytes = [...files.values()].reduce((n, f) => n + f.size, 0);
  return { images: images.length, blobs: files.size, bytes };
}
