import { parseDigest } from '../../lib/digest.ts';
import { sendEmpty } from '../http.ts';
import type { Handler } from '../context.ts';

/** dist-spec end-10: DELETE /v2/<name>/blobs/<digest> unlinks it from the repository. */
export const deleteBlob: Handler = async ({ res, name, ref, store }) => {
  await store.unlinkBlob(name, parseDigest(ref).digest);
  sendEmpty(res, 202, { 'Docker-Content-Digest': ref });
};
