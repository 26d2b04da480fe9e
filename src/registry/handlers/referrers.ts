import { parseDigest } from '../../lib/digest.ts';
import { MediaType } from '../../oci/media-types.ts';
import { sendJson } from '../http.ts';
import type { Handler } from '../context.ts';

/** dist-spec 1.1 end-12: an image index of the manifests whose subject is <digest>. */
export const getReferrers: Handler = async ({ res, url, name, ref, store }) => {
  const subject = parseDigest(ref).digest;
  const artifactType = url.searchParams.get('artifactType') ?? undefined;
  const manifests = store.listReferrers(name, subject, artifactType).map((r) => ({
    mediaType: r.mediaType,
    digest: r.digest,
    size: r.size,
    ...(r.artifactType !== undefined ? { artifactType: r.artifactType } : {}),
    ...(r.annotations ? { annotations: r.annotations } : {}),
  }));
  const headers: Record<string, string> = { 'Content-Type': MediaType.ociIndex };
  if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
  sendJson(res, 200, { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, headers);
};
