import { errorCode } from '../lib/errors.ts';
import type { UpstreamPort } from '../sync/upstream-port.ts';

/**
 * Where signatures are read from: the upstream (sync, the proxy), or the copies kept in the store.
 * A source without `getReferrers` is listed through the referrers tag schema only.
 */
export type SignatureSource = Pick<UpstreamPort, 'getManifest' | 'fetchBlob'> & Partial<Pick<UpstreamPort, 'getReferrers'>>;

/** Referrers read per image by default (sync.maxReferrers): descriptors listed, over every page. */
export const DEFAULT_MAX_REFERRERS = 64;
/** A cosign signature manifest is about 1 KB; a referrer larger than this is not read as one. */
const MAX_SIGNATURE_MANIFEST = 256 * 1024;

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
}

/** The referrers of an image with one artifact type, and how they were found. */
export interface ReferrerListing {
  /** api: `GET /v2/<name>/referrers/<digest>`; tag: the referrers tag schema `<alg>-<hex>` (API answered 404). */
  via: 'api' | 'tag';
  /** Digests of the referrers with the wanted artifact type, in listed order. */
  digests: string[];
  /** The fallback tag and its index (via tag only), replicated under that tag. */
  fallback?: { tag: string; index: FetchedManifest };
  /** Requests made to list them (API pages, or the one tag GET). */
  requests: number;
  /** Why the listing stopped before its end (more than `max` referrers, too many pages). */
  overCap?: string;
}

/**
 * Lists the referrers of `image` with `artifactType` the way dist-spec 1.1 asks a client to: the
 * referrers API first (filter asked for; applied here when the registry did not say
 * `OCI-Filters-Applied: artifactType`), following `Link: rel="next"` pages; on 404 the referrers
 * tag schema. At most `max` descriptors are read (all pages together) and at most `max` pages.
 * undefined: neither the API nor the fallback tag exists.
 */
export async function listReferrers(
  upstream: SignatureSource,
  image: { repository: string; digest: string },
  artifactType: string,
  max: number,
  signal: AbortSignal,
): Promise<ReferrerListing | undefined> {
  if (upstream.getReferrers) {
    let page = await upstream.getReferrers(image.repository, image.digest, { artifactType }, signal);
    if (page) {
      const out: ReferrerListing = { via: 'api', digests: [], requests: 1 };
      const seen = new Set<string>();
      let read = 0;
      for (;;) {
        for (const d of page.manifests) {
          if (++read > max) {
            out.overCap = `more than ${max} referrers listed for ${image.repository}@${image.digest}; only the first ${max} were read (sync.maxReferrers)`;
            return out;
          }
          // A registry that ignored the filter lists every referrer: filter here.
          if (!page.filtered && d.artifactType !== artifactType) continue;
          if (!seen.has(d.digest)) {
            seen.add(d.digest);
            out.digests.push(d.digest);
          }
        }
        const next: string | undefined = page.next;
        if (next === undefined) return out;
        if (out.requests >= max) {
          out.overCap = `more than ${max} pages of referrers for ${image.repository}@${image.digest}; stopped (sync.maxReferrers)`;
          return out;
        }
        page = await upstream.getReferrers(image.repository, image.digest, { next }, signal);
        out.requests++;
        // The next page vanished between two requests: what was read stands.
        if (!page) return out;
      }
    }
  }
  return fromFallbackTag(upstream, image, artifactType, max, signal);
}

/** dist-spec "referrers tag schema": `<alg>-<hex>` tags an index of the image's referrers. */
async function fromFallbackTag(
  upstream: SignatureSource,
  image: { repository: string; digest: string },
  artifactType: string,
  max: number,
  signal: AbortSignal,
): Promise<ReferrerListing | undefined> {
  const tag = image.digest.replace(':', '-');
  const index = await getIfExists(upstream, image.repository, tag, signal);
  if (!index) return undefined;
  let listed: Array<{ digest?: unknown; artifactType?: unknown }> = [];
  try {
    listed = (JSON.parse(index.body.toString('utf8')) as { manifests?: typeof listed }).manifests ?? [];
  } catch {
    return undefined;
  }
  if (!Array.isArray(listed)) return undefined;
  const out: ReferrerListing = { via: 'tag', digests: [], requests: 1, fallback: { tag, index: { ...index, mediaType: 'application/vnd.oci.image.index.v1+json' } } };
  if (listed.length > max) out.overCap = `the referrers tag ${image.repository}:${tag} lists ${listed.length} referrers; only the first ${max} were read (sync.maxReferrers)`;
  for (const d of listed.slice(0, max)) {
    if (d?.artifactType === artifactType && typeof d.digest === 'string' && !out.digests.includes(d.digest)) out.digests.push(d.digest);
  }
  return out;
}

/** The referrers of one artifact type that are the image's, fetched; and those passed over, with why. */
export interface FetchedReferrers {
  /** Undefined: neither the referrers API nor its fallback tag exists. */
  listing: ReferrerListing | undefined;
  /** Manifests whose subject is the image, in listed order. */
  manifests: FetchedManifest[];
  /** Referrers not read as signatures, and why. */
  skipped: string[];
}

/**
 * Lists the image's referrers of `artifactType` (listReferrers) and fetches each by digest, keeping
 * only manifests whose subject is the image. Up to `max` are held at once: one over
 * MAX_SIGNATURE_MANIFEST is passed over (a signature is ~1 KB; max × 4 MiB must not be held).
 * Sync's signature check and bundle creation read referrers with this.
 */
export async function fetchReferrers(
  upstream: SignatureSource,
  image: { repository: string; digest: string },
  artifactType: string,
  max: number,
  signal: AbortSignal,
): Promise<FetchedReferrers> {
  const listing = await listReferrers(upstream, image, artifactType, max, signal);
  const out: FetchedReferrers = { listing, manifests: [], skipped: [] };
  for (const digest of listing?.digests ?? []) {
    const m = await getIfExists(upstream, image.repository, digest, signal);
    if (!m) continue;
    if (m.body.length > MAX_SIGNATURE_MANIFEST) {
      out.skipped.push(`referrer ${digest} is ${m.body.length} bytes (over ${MAX_SIGNATURE_MANIFEST}), not read as a signature`);
      continue;
    }
    // Only a referrer of this image: its subject names the digest being checked.
    let subject: unknown;
    try {
      subject = (JSON.parse(m.body.toString('utf8')) as { subject?: { digest?: unknown } }).subject?.digest;
    } catch {
      continue;
    }
    if (subject === image.digest) out.manifests.push(m);
  }
  return out;
}

export async function getIfExists(upstream: SignatureSource, repo: string, reference: string, signal: AbortSignal): Promise<FetchedManifest | undefined> {
  try {
    return await upstream.getManifest(repo, reference, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    if (errorCode(err) === 'UPSTREAM_NOT_FOUND') return undefined;
    throw err;
  }
}
