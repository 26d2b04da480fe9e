import { isDigest } from '../../lib/digest.ts';
import { isTag } from '../../oci/names.ts';
import { registryError } from '../errors.ts';
import { sendEmpty } from '../http.ts';
import type { Handler } from '../context.ts';

/** dist-spec end-9 (by digest) and end-10 (by tag, removing only the tag). */
export const deleteManifest: Handler = async ({ res, name, ref, store }) => {
  if (isDigest(ref)) await store.deleteManifest(name, ref);
  else if (isTag(ref)) await store.deleteTag(name, ref);
  else throw registryError(ref.includes(':') ? 'DIGEST_INVALID' : 'TAG_INVALID', `invalid reference: ${ref.slice(0, 200)}`);
  sendEmpty(res, 202);
};
