import { isDigest } from '../lib/digest.ts';
import type { ReferrerDescriptor } from '../oci/referrers.ts';
import { UpstreamErrorCode, upstreamError, type UpstreamErrorDetail } from './errors.ts';

/**
 * Reads a referrers answer: an image index whose descriptors are kept when they carry a digest,
 * a media type and a size (the rest are counted, not trusted). A body that is no index is an error.
 */
export function parseReferrersBody(body: Buffer, what: string, detail: UpstreamErrorDetail): { manifests: ReferrerDescriptor[]; malformed: number } {
  let doc: { manifests?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw upstreamError(UpstreamErrorCode.protocol, `${what}: the answer is not JSON`, detail);
  }
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.manifests)) {
    throw upstreamError(UpstreamErrorCode.protocol, `${what}: the answer is not an image index with a manifests list`, detail);
  }
  const manifests: ReferrerDescriptor[] = [];
  let malformed = 0;
  for (const raw of doc.manifests as Array<Record<string, unknown>>) {
    const d = raw ?? {};
    if (typeof d.digest !== 'string' || !isDigest(d.digest) || typeof d.mediaType !== 'string' || !Number.isSafeInteger(d.size) || (d.size as number) < 0) {
      malformed++;
      continue;
    }
    const out: ReferrerDescriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size as number };
    if (typeof d.artifactType === 'string') out.artifactType = d.artifactType;
    if (d.annotations && typeof d.annotations === 'object' && !Array.isArray(d.annotations)) {
      out.annotations = Object.fromEntries(Object.entries(d.annotations as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
    manifests.push(out);
  }
  return { manifests, malformed };
}

/** Whether `OCI-Filters-Applied` names artifactType (a comma-separated list of filters). */
export function filtersApplied(header: string | string[] | undefined, filter: string): boolean {
  const raw = Array.isArray(header) ? header.join(',') : (header ?? '');
  return raw.split(',').some((f) => f.trim().toLowerCase() === filter.toLowerCase());
}

/**
 * The next page from a Link header (`<url>; rel="next"`, RFC 8288), resolved against the page's
 * URL. Only a link to the same registry and the same referrers path is followed: our credentials
 * go with it. Returns the path and query under `basePath`, or undefined (no next page).
 */
export function nextReferrersPage(link: string | string[] | undefined, from: URL, basePath: string, expectPath: string): string | undefined {
  const values = Array.isArray(link) ? link : link === undefined ? [] : [link];
  for (const value of values) {
    for (const part of value.split(/,(?=\s*<)/)) {
      const m = /^\s*<([^>]*)>\s*(.*)$/.exec(part);
      if (!m || !/(^|;)\s*rel="?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/i.test(m[2] ?? '')) continue;
      let url: URL;
      try {
        url = new URL(m[1] ?? '', from);
      } catch {
        return undefined;
      }
      if (url.origin !== from.origin || !url.pathname.startsWith(`${basePath}/`)) return undefined;
      const path = url.pathname.slice(basePath.length);
      if (path !== expectPath) return undefined;
      return `${path}${url.search}`;
    }
  }
  return undefined;
}
