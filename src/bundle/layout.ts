import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest } from '../lib/digest.ts';
import { SatelliteError } from '../lib/errors.ts';
import type { UpstreamPort } from '../sync/upstream-port.ts';

/**
 * A bundle is one OCI image layout (image-spec image-layout.md: `oci-layout`, `index.json`,
 * `blobs/sha256/<hex>`, every blob once) plus `bundle.json`: what it holds and every file's digest
 * and size, so an import can check all of it before it touches the store.
 */
export const BUNDLE_FORMAT = 'harbor-satellite-bundle/1';
export const REF_NAME = 'org.opencontainers.image.ref.name';

export interface BundleImage {
  repository: string;
  /** Tag (or digest) it was taken from. */
  reference: string;
  digest: string;
  mediaType: string;
  /** The cosign tag-scheme signature manifest carried with it, if the source had one. */
  signature?: { tag: string; digest: string };
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  createdAt: string;
  images: BundleImage[];
  /** Every file of the layout but bundle.json itself, relative paths. */
  files: Array<{ path: string; digest: string; size: number }>;
}

export function bundleError(code: 'BUNDLE_INVALID' | 'BUNDLE_DAMAGED', message: string, detail?: unknown): SatelliteError {
  return new SatelliteError(code, message, { detail });
}

export function blobPath(dir: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  return join(dir, 'blobs', alg!, hex!);
}

/** `repo:tag` or `repo@sha256:...`: the index.json ref name of an image (skopeo reads `oci:DIR:NAME`). */
export function refName(repository: string, reference: string): string {
  return isDigest(reference) ? `${repository}@${reference}` : `${repository}:${reference}`;
}

export async function readBundleManifest(dir: string): Promise<BundleManifest> {
  let doc: BundleManifest;
  try {
    doc = JSON.parse(await readFile(join(dir, 'bundle.json'), 'utf8')) as BundleManifest;
  } catch (err) {
    throw bundleError('BUNDLE_INVALID', `${dir} is not a bundle: bundle.json unreadable (${(err as Error).message})`);
  }
  if (doc.format !== BUNDLE_FORMAT || !Array.isArray(doc.images) || !Array.isArray(doc.files)) {
    throw bundleError('BUNDLE_INVALID', `${dir}/bundle.json is not a ${BUNDLE_FORMAT} contents list`);
  }
  for (const f of doc.files) {
    if (typeof f.path !== 'string' || f.path.includes('..') || f.path.startsWith('/') || !isDigest(f.digest) || !Number.isSafeInteger(f.size)) {
      throw bundleError('BUNDLE_INVALID', `bundle.json lists an invalid file entry ${JSON.stringify(f)}`);
    }
  }
  return doc;
}

/**
 * The bundle's layout read like a registry (UpstreamPort), so the signature check that sync runs
 * against an upstream runs unchanged against a USB stick. Manifests by tag come from bundle.json.
 */
export class LayoutSource implements UpstreamPort {
  readonly #dir: string;
  readonly #tags = new Map<string, { digest: string; mediaType: string }>();
  readonly #mediaTypes = new Map<string, string>();

  constructor(dir: string, manifest: BundleManifest) {
    this.#dir = dir;
    for (const img of manifest.images) {
      this.#tags.set(`${img.repository}:${img.reference}`, { digest: img.digest, mediaType: img.mediaType });
      this.#mediaTypes.set(img.digest, img.mediaType);
      if (img.signature) {
        this.#tags.set(`${img.repository}:${img.signature.tag}`, { digest: img.signature.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
      }
    }
  }

  async ping(): Promise<void> {}

  async getManifest(repo: string, reference: string): Promise<{ digest: string; mediaType: string; body: Buffer }> {
    const known = isDigest(reference) ? { digest: reference, mediaType: this.#mediaTypes.get(reference) } : this.#tags.get(`${repo}:${reference}`);
    if (!known) throw new SatelliteError('UPSTREAM_NOT_FOUND', `${repo}:${reference} is not in the bundle`);
    const body = await readFile(blobPath(this.#dir, known.digest)).catch(() => undefined);
    if (!body) throw new SatelliteError('UPSTREAM_NOT_FOUND', `manifest ${known.digest} is not in the bundle`);
    const mediaType = known.mediaType ?? (JSON.parse(body.toString('utf8')) as { mediaType?: string }).mediaType ?? 'application/vnd.oci.image.manifest.v1+json';
    return { digest: known.digest, mediaType, body };
  }

  async fetchBlob(_repo: string, digest: string, opts: { offset?: number } = {}) {
    const path = blobPath(this.#dir, digest);
    const size = (await stat(path).catch(() => undefined))?.size;
    if (size === undefined) throw new SatelliteError('UPSTREAM_NOT_FOUND', `blob ${digest} is not in the bundle`);
    const start = opts.offset ?? 0;
    return { status: (start > 0 ? 206 : 200) as 200 | 206, start, total: size, body: createReadStream(path, { start }) };
  }

  async close(): Promise<void> {}
}
