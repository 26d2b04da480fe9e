import { isDigest } from '../../lib/digest.ts';
import { isTag } from '../../oci/names.ts';
import { INDEX_TYPES, isIndexType } from '../../oci/media-types.ts';
import { registryError } from '../errors.ts';
import type { Handler } from '../context.ts';

/** Media types a client lists in Accept (parameters and q-values dropped). */
function accepted(header: string | string[] | undefined): string[] | undefined {
  if (header === undefined) return undefined;
  const raw = Array.isArray(header) ? header.join(',') : header;
  return raw
    .split(',')
    .map((s) => s.split(';')[0]!.trim().toLowerCase())
    .filter(Boolean);
}

/**
 * Content negotiation: a stored manifest is served as is (we never convert). Like distribution, an
 * index is hidden (404) from a client whose Accept lists no index type, since it could not use it.
 */
function acceptable(mediaType: string, accept: string[] | undefined): boolean {
  if (!accept || accept.length === 0) return true;
  if (accept.includes(mediaType) || accept.includes('*/*') || accept.includes('application/*')) return true;
  if (isIndexType(mediaType)) return accept.some((t) => INDEX_TYPES.includes(t));
  return true;
}

/** dist-spec end-3: GET/HEAD /v2/<name>/manifests/<reference> */
export const getManifest: Handler = async ({ req, res, url, name: requested, ref, store, proxy, signal, device, stats }) => {
  if (!isDigest(ref) && !isTag(ref)) {
    throw registryError(ref.includes(':') ? 'DIGEST_INVALID' : 'TAG_INVALID', `invalid reference: ${ref.slice(0, 200)}`);
  }
  // containerd names the registry it meant with ?ns=<host> on every mirror request.
  const ns = url.searchParams.get('ns') ?? undefined;
  const name = proxy ? proxy.storeName(requested, ns) : requested;
  stats.manifest = { repository: name, reference: ref };
  if (proxy) await proxy.prepareManifest(requested, ref, { ns, signal, device });
  const found = store.getManifest(name, ref);
  if (!found) {
    if (!store.repositoryExists(name)) throw registryError('NAME_UNKNOWN', `repository ${name} not known`);
    throw registryError('MANIFEST_UNKNOWN', `manifest ${ref} not found in ${name}`);
  }
  if (!acceptable(found.record.mediaType, accepted(req.headers.accept))) {
    throw registryError('MANIFEST_UNKNOWN', `manifest ${ref} is a ${found.record.mediaType}, which the request does not accept`);
  }
  const etag = `"${found.digest}"`;
  const headers = {
    'Content-Type': found.record.mediaType,
    'Content-Length': found.content.length,
    'Docker-Content-Digest': found.digest,
    ETag: etag,
  };
  if (req.method === 'GET') store.pulls.touch(name, found.digest);
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, { ETag: etag, 'Docker-Content-Digest': found.digest });
    res.end();
    return;
  }
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : found.content);
};
