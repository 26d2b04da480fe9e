import { parseDigest } from '../../lib/digest.ts';
import { registryError } from '../errors.ts';
import { contentLength, hasBody } from '../http.ts';
import { parseContentRange } from '../range.ts';
import type { Handler } from '../context.ts';
import { sendBlobCreated } from './upload-common.ts';

/** dist-spec end-6: PUT ?digest= closes the session, with an optional last chunk in the body. */
export const putUpload: Handler = async ({ req, res, url, name, ref, store, signal }) => {
  const digestParam = url.searchParams.get('digest');
  if (digestParam === null) {
    req.resume();
    throw registryError('DIGEST_INVALID', 'digest query parameter is required to complete an upload');
  }
  const digest = parseDigest(digestParam).digest;
  if (hasBody(req)) {
    const range = parseContentRange(req.headers['content-range']);
    if (range === 'invalid') {
      req.resume();
      throw registryError('RANGE_INVALID', 'malformed Content-Range');
    }
    const length = contentLength(req);
    await store.appendUpload(name, ref, req, {
      ...(range ? { start: range.start } : {}),
      ...(length !== undefined ? { length } : {}),
      signal,
    });
  } else {
    store.getUpload(name, ref);
  }
  await store.finishUpload(name, ref, digest);
  sendBlobCreated(res, name, digest);
};
