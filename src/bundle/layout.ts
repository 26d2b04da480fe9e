import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf, isDigest } from '../lib/digest.ts';
import { SatelliteError } from '../lib/errors.ts';
import type { ReferrerDescriptor, ReferrersPage } from '../oci/referrers.ts';
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
  /**
   * Its cosign signatures held as OCI 1.1 referrers (subject = this image), carried by digest: the
   * import stores them so the importer's referrers API lists them again.
   */
  referrers?: ReferrerDescriptor[];
}

/** One file of the layout; a blob larger than the part size is stored as parts `<path>.000`, `.001`, ... */
export interface BundleFile {
  path: string;
  digest: string;
  size: number;
  /** Present when split: each part's file, size and SHA-256, in order; their bytes concatenated are the file. */
  parts?: Array<{ path: string; digest: string; size: number }>;
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  createdAt: string;
  /** Who wrote it: "groundcontrol" (signed, with the desired state) or "satellite". */
  createdBy?: string;
  images: BundleImage[];
  /** Every file of the layout but bundle.json and bundle.sig, relative paths. */
  files: BundleFile[];
  /** The desired state the bundle fills (Ground Control bundles), without the upstream password. */
  desired?: unknown;
}

export type BundleErrorCode = 'BUNDLE_INVALID' | 'BUNDLE_DAMAGED' | 'BUNDLE_UNSIGNED' | 'BUNDLE_SIGNATURE_INVALID' | 'BUNDLE_KEY_MISSING';

export function bundleError(code: BundleErrorCode, message: string, detail?: unknown): SatelliteError {
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

/** Manifests are read whole (as the registry and the upstream client cap them). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** bundle.json is buffered (and its signature checked over these very bytes): capped. */
const MAX_CONTENTS_BYTES = 64 * 1024 * 1024;

/** Reads bundle.json: the parsed list and the exact bytes (what bundle.sig signs). */
export async function readBundleManifest(dir: string): Promise<BundleManifest> {
  return (await readContents(dir)).manifest;
}

export async function readContents(dir: string): Promise<{ manifest: BundleManifest; bytes: Buffer }> {
  let doc: BundleManifest;
  let bytes: Buffer;
  try {
    const size = (await stat(join(dir, 'bundle.json'))).size;
    if (size > MAX_CONTENTS_BYTES) throw new Error(`${size} bytes, more than ${MAX_CONTENTS_BYTES}`);
    bytes = await readFile(join(dir, 'bundle.json'));
    doc = JSON.parse(bytes.toString('utf8')) as BundleManifest;
  } catch (err) {
    throw bundleError('BUNDLE_INVALID', `${dir} is not a bundle: bundle.json unreadable (${(err as Error).message})`);
  }
  if (doc.format !== BUNDLE_FORMAT || !Array.isArray(doc.images) || !Array.isArray(doc.files)) {
    throw bundleError('BUNDLE_INVALID', `${dir}/bundle.json is not a ${BUNDLE_FORMAT} contents list`);
  }
  const validFile = (f: { path: unknown; digest: unknown; size: unknown }) =>
    typeof f.path === 'string' && !f.path.includes('..') && !f.path.startsWith('/') && isDigest(f.digest as string) && Number.isSafeInteger(f.size) && (f.size as number) >= 0;
  for (const f of doc.files) {
    if (!validFile(f) || (f.parts !== undefined && (!Array.isArray(f.parts) || !f.parts.every(validFile) || f.parts.reduce((n, p) => n + p.size, 0) !== f.size))) {
      throw bundleError('BUNDLE_INVALID', `bundle.json lists an invalid file entry ${JSON.stringify(f).slice(0, 500)}`);
    }
  }
  return { manifest: doc, bytes };
}

/** The file's bytes, from its parts in order when split (each part checked by the import before). */
export function openBundleFile(dir: string, f: BundleFile, start = 0): Readable {
  if (!f.parts) return createReadStream(join(dir, f.path), { start });
  const parts = f.parts;
  return Readable.from(
    (async function* () {
      let offset = 0;
      for (const p of parts) {
        const end = offset + p.size;
        if (end > start) yield* createReadStream(join(dir, p.path), { start: Math.max(0, start - offset) });
        offset = end;
      }
    })(),
    { objectMode: false },
  );
}

/**
 * The bundle's layout read like a registry (UpstreamPort), so the signature check that sync runs
 * against an upstream runs unchanged against a USB stick. Manifests by tag come from bundle.json.
 */
export class LayoutSource implements UpstreamPort {
  readonly #dir: string;
  readonly #files: Map<string, BundleFile>;
  readonly #tags = new Map<string, { digest: string; mediaType: string }>();
  readonly #mediaTypes = new Map<string, string>();
  readonly #referrers = new Map<string, ReferrerDescriptor[]>();

  constructor(dir: string, manifest: BundleManifest) {
    this.#dir = dir;
    this.#files = new Map(manifest.files.map((f) => [f.digest, f]));
    for (const img of manifest.images) {
      this.#tags.set(`${img.repository}:${img.reference}`, { digest: img.digest, mediaType: img.mediaType });
      this.#mediaTypes.set(img.digest, img.mediaType);
      if (img.referrers?.length) this.#referrers.set(`${img.repository}@${img.digest}`, img.referrers);
      for (const r of img.referrers ?? []) this.#mediaTypes.set(r.digest, r.mediaType);
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
    // The import checked every file it will store, but not those the store already held: read as named, or not at all.
    if (digestOf(body) !== known.digest) throw bundleError('BUNDLE_DAMAGED', `bundle file ${blobPath('', known.digest)} does not hash to ${known.digest}`, { digest: known.digest });
    const mediaType = known.mediaType ?? (JSON.parse(body.toString('utf8')) as { mediaType?: string }).mediaType ?? 'application/vnd.oci.image.manifest.v1+json';
    return { digest: known.digest, mediaType, body };
  }

  /** The referrers bundle.json lists for the image, as one page of the referrers API (filtered here). */
  async getReferrers(repo: string, digest: string, opts: { artifactType?: string } = {}): Promise<ReferrersPage | undefined> {
    const listed = this.#referrers.get(`${repo}@${digest}`);
    if (!listed) return undefined;
    const manifests = opts.artifactType === undefined ? listed : listed.filter((r) => r.artifactType === opts.artifactType);
    return { manifests, malformed: 0, filtered: opts.artifactType !== undefined };
  }

  async fetchBlob(_repo: string, digest: string, opts: { offset?: number } = {}) {
    const f = this.#files.get(digest);
    if (!f) throw new SatelliteError('UPSTREAM_NOT_FOUND', `blob ${digest} is not in the bundle`);
    const start = opts.offset ?? 0;
    return { status: (start > 0 ? 206 : 200) as 200 | 206, start, total: f.size, body: openBundleFile(this.#dir, f, start) };
  }

  async close(): Promise<void> {}
}
