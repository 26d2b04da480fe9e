import { isDigest } from '../../lib/digest.ts';
import { isTag } from '../../oci/names.ts';
import { registryError } from '../errors.ts';
import { readCappedBody, sendEmpty } from '../http.ts';
import type { Handler } from '../context.ts';

/** dist-spec end-7: PUT /v2/<name>/manifests/<reference> */
export const putManifest: Handler = async ({ req, res, name, ref, store, limits }) => {
  if (!isDigest(ref) && !isTag(ref)) {
    req.resume();
    throw registryError(ref.includes(':') ? 'DIGEST_INVALID' : 'TAG_INVALID', `invalid reference: ${ref.slice(0, 200)}`);
  }
  const body = await readCappedBody(req, limits.maxManifestBytes);
  const { digest, parsed } = await store.putManifest(name, ref, body, req.headers['content-type']);
  const headers: Record<string, string> = {
    Location: `/v2/${name}/manifests/${digest}`,
    'Docker-Content-Digest': digest,
  };
  // dist-spec 1.1: tells the client this registry indexed the subject for the referrers API.
  if (parsed.subject) headers['OCI-Subject'] = parsed.subject.digest;
  sendEmpty(res, 201, headers);
};
