import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf, isDigest } from '../lib/digest.ts';
import { errnoCode } from '../lib/errors.ts';
import { parseManifest } from '../oci/manifest.ts';
import { isRepositoryName, isTag, splitReference, withoutRegistryHost } from '../oci/names.ts';
import { signatureTag } from '../trust/cosign.ts';
import { blobPath, BUNDLE_FORMAT, bundleError, MAX_MANIFEST_BYTES, REF_NAME, type BundleFile, type BundleImage, type BundleManifest } from './layout.ts';

/**
 * A plain OCI image layout (image-spec image-layout.md), as `skopeo copy … oci:DIR:REF` writes it:
 * `oci-layout`, `index.json` naming images by `org.opencontainers.image.ref.name`, `blobs/sha256/…`.
 * It has no contents list, so one is derived from the descriptors (index.json -> manifests -> blobs):
 * the import then checks every file against the digest and size its descriptor gives, exactly as it
 * checks a bundle's files against bundle.json. Nothing vouches for the descriptors: the content is
 * unsigned, and it never carries a desired state.
 */
export const LAYOUT_FORMAT = 'oci-layout';

/** index.json is buffered: capped like a manifest (it is one: an image index). */
const MAX_INDEX_BYTES = MAX_MANIFEST_BYTES;

export interface LayoutOptions {
  /** Repository for images whose ref name is a bare tag (or absent): `--repository`, `sync.layoutRepository`. */
  repository?: string | undefined;
}

/** A directory holding index.json (and oci-layout) but no bundle.json. */
export async function isPlainLayout(dir: string): Promise<boolean> {
  const [index, layout] = await Promise.all([stat(join(dir, 'index.json')).catch(() => undefined), stat(join(dir, 'oci-layout')).catch(() => undefined)]);
  return index !== undefined && layout !== undefined;
}

/**
 * Maps an index.json ref name to repository and reference. A name with a `:`, `/` or `@` is a
 * reference (`apps/app:1.4`, `registry.example:5000/apps/app:1.4`, `apps/app@sha256:…`; a leading
 * registry host is dropped, as a mirror sees only the path; no tag means `latest`); a bare name
 * (`1.4`, what `oci:DIR:1.4` writes) is a tag of `repository`.
 */
export function layoutRef(name: string | undefined, digest: string, opts: LayoutOptions): { repository: string; reference: string } {
  const needRepo = (what: string) =>
    bundleError('BUNDLE_INVALID', `index.json names ${digest} ${what}: give the repository it belongs to (bundle import --repository REPO, or sync.layoutRepository)`);
  let repository: string;
  let reference: string;
  if (name === undefined) {
    if (!opts.repository) throw needRepo('without a ref name');
    repository = opts.repository;
    reference = digest;
  } else if (!/[:/@]/.test(name)) {
    if (!opts.repository) throw needRepo(`by the bare tag "${name}"`);
    repository = opts.repository;
    reference = name;
  } else {
    ({ repository, reference } = splitReference(name));
    repository = withoutRegistryHost(repository);
  }
  if (!isRepositoryName(repository)) throw bundleError('BUNDLE_INVALID', `index.json ref name ${JSON.stringify(name)} (${digest}): "${repository}" is not a valid repository name`);
  if (isDigest(reference) ? reference !== digest : !isTag(reference)) {
    throw bundleError('BUNDLE_INVALID', `index.json ref name ${JSON.stringify(name)} (${digest}): "${reference}" is not a valid tag (or this manifest's digest)`);
  }
  return { repository, reference };
}

/**
 * Derives the contents list of a plain layout: every image index.json names, every manifest under it
 * (read, capped, checked against its descriptor), every blob with its descriptor's digest and size.
 * A child an index names but the layout lacks is left out (a platform not copied, as sync skips it);
 * a missing top manifest or a blob is listed anyway so the import names it as missing.
 */
export async function readPlainLayout(dir: string, opts: LayoutOptions): Promise<BundleManifest> {
  let version: unknown;
  let index: { manifests?: unknown };
  try {
    version = (JSON.parse(await readCapped(join(dir, 'oci-layout'), 4096)) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    index = JSON.parse(await readCapped(join(dir, 'index.json'), MAX_INDEX_BYTES)) as { manifests?: unknown };
  } catch (err) {
    throw bundleError('BUNDLE_INVALID', `${dir} is neither a bundle (no bundle.json) nor a readable OCI image layout: ${(err as Error).message}`);
  }
  if (typeof version !== 'string' || !Array.isArray(index.manifests)) throw bundleError('BUNDLE_INVALID', `${dir} is not an OCI image layout (oci-layout has no imageLayoutVersion, or index.json no manifests)`);

  const files = new Map<string, BundleFile>();
  const list = (digest: string, size: number) => {
    const known = files.get(digest);
    if (known && known.size !== size) throw bundleError('BUNDLE_INVALID', `descriptors give ${digest} two sizes (${known.size} and ${size})`);
    files.set(digest, { path: blobPath('', digest).replace(/^\//, ''), digest, size });
  };
  const walk = async (d: { digest: string; size: number }, top: boolean): Promise<void> => {
    if (files.has(d.digest)) return;
    const path = blobPath(dir, d.digest);
    const size = (await stat(path).catch(() => undefined))?.size;
    if (size === undefined && !top) return;
    list(d.digest, d.size);
    // Missing, too large or another size than its descriptor: listed as is, the import names what is wrong (never buffered).
    if (size === undefined || size !== d.size || d.size > MAX_MANIFEST_BYTES) return;
    const body = await readFile(path);
    if (body.length !== d.size || digestOf(body) !== d.digest) return; // the import's check names it damaged
    const parsed = parseManifest(body);
    for (const child of parsed.manifests) await walk(child, false);
    for (const b of parsed.blobs) list(b.digest, b.size);
  };

  const images: BundleImage[] = [];
  for (const [i, raw] of (index.manifests as unknown[]).entries()) {
    const d = raw as { mediaType?: unknown; digest?: unknown; size?: unknown; annotations?: Record<string, unknown> };
    if (typeof d.digest !== 'string' || !d.digest.startsWith('sha256:') || !isDigest(d.digest) || !Number.isSafeInteger(d.size) || (d.size as number) < 0 || typeof d.mediaType !== 'string') {
      throw bundleError('BUNDLE_INVALID', `index.json manifests[${i}] is not a sha256 descriptor with mediaType and size`);
    }
    const name = d.annotations?.[REF_NAME];
    const ref = layoutRef(typeof name === 'string' ? name : undefined, d.digest, opts);
    await walk({ digest: d.digest, size: d.size as number }, true);
    images.push({ ...ref, digest: d.digest, mediaType: d.mediaType });
  }
  // A cosign tag-scheme signature the layout carries (`<repo>:sha256-<hex>.sig`) travels with its image.
  const signed = new Map(images.map((img) => [`${img.repository}:${signatureTag(img.digest)}`, img]));
  const plain = images.filter((img) => {
    const target = signed.get(`${img.repository}:${img.reference}`);
    if (target) target.signature = { tag: img.reference, digest: img.digest };
    return !target;
  });
  return { format: BUNDLE_FORMAT, createdAt: new Date(0).toISOString(), createdBy: LAYOUT_FORMAT, images: plain, files: [...files.values()] };
}

async function readCapped(path: string, cap: number): Promise<string> {
  const size = (await stat(path)).size;
  if (size > cap) throw new Error(`${path} is ${size} bytes, more than ${cap}`);
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: ${errnoCode(err) ?? (err as Error).message}`);
  }
}
