import { isDigest, parseDigest } from '../../lib/digest.ts';
import { MediaType } from '../../oci/media-types.ts';
import { registryError } from '../errors.ts';
import { sendJson } from '../http.ts';
import type { Handler } from '../context.ts';

/** Descriptors per answer at most: past it the answer links the next page (bounded responses). */
export const REFERRERS_PAGE = 1000;

/**
 * dist-spec 1.1 end-12a: an image index of the manifests whose subject is <digest> (an empty one,
 * never 404, when there are none), filtered by `artifactType` with `OCI-Filters-Applied` saying so.
 * Long lists are paged: `Link: <…?last=<referrer digest>>; rel="next"` (n asks for smaller pages).
 */
export const getReferrers: Handler = async ({ res, url, name, ref, store }) => {
  const subject = parseDigest(ref).digest;
  const artifactType = url.searchParams.get('artifactType') ?? undefined;
  const last = url.searchParams.get('last') ?? undefined;
  if (last !== undefined && !isDigest(last)) throw registryError('DIGEST_INVALID', `last must be a referrer digest, got ${last.slice(0, 200)}`);
  const rawN = url.searchParams.get('n');
  if (rawN !== null && !/^\d{1,6}$/.test(rawN)) throw registryError('PAGINATION_NUMBER_INVALID', `n must be a non-negative integer, got ${rawN.slice(0, 20)}`);
  const n = Math.min(rawN === null ? REFERRERS_PAGE : Number(rawN), REFERRERS_PAGE);
  const found = store.listReferrers(name, subject, artifactType, { n: n + 1, ...(last !== undefined ? { last } : {}) });
  const headers: Record<string, string> = { 'Content-Type': MediaType.ociIndex };
  if (found.length > n) {
    found.length = n;
    const next = new URLSearchParams();
    if (artifactType !== undefined) next.set('artifactType', artifactType);
    if (rawN !== null) next.set('n', String(n));
    const lastShown = found[found.length - 1];
    if (lastShown) {
      next.set('last', lastShown.digest);
      headers.Link = `</v2/${name}/referrers/${subject}?${next.toString()}>; rel="next"`;
    }
  }
  const manifests = found.map((r) => ({
    mediaType: r.mediaType,
    digest: r.digest,
    size: r.size,
    ...(r.artifactType !== undefined ? { artifactType: r.artifactType } : {}),
    ...(r.annotations ? { annotations: r.annotations } : {}),
  }));
  if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
  sendJson(res, 200, { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, headers);
};
