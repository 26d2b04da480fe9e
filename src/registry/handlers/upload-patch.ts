import { registryError } from '../errors.ts';
import { contentLength } from '../http.ts';
import { parseContentRange } from '../range.ts';
import type { Handler } from '../context.ts';
import { sendUploadStatus } from './upload-common.ts';

/** dist-spec end-5: PATCH a chunk (Content-Range "<start>-<end>") or stream the rest of the blob. */
export const patchUpload: Handler = async ({ req, res, name, ref, store, signal }) => {
  const range = parseContentRange(req.headers['content-range']);
  if (range === 'invalid') {
    req.resume();
    throw registryError('RANGE_INVALID', `malformed Content-Range: ${String(req.headers['content-range']).slice(0, 100)}`);
  }
  const length = contentLength(req);
  if (range && length !== undefined && range.end - range.start + 1 !== length) {
    req.resume();
    throw registryError('RANGE_INVALID', 'Content-Range and Content-Length disagree');
  }
  try {
    const status = await store.appendUpload(name, ref, req, {
      ...(range ? { start: range.start } : {}),
      ...(length !== undefined ? { length } : {}),
      signal,
    });
    sendUploadStatus(res, 202, name, ref, status.offset);
  } catch (err) {
    // dist-spec: a 416 carries the current state so the client can resume from it.
    if (err instanceof Error && 'code' in err && err.code === 'RANGE_INVALID') {
      const current = store.getUpload(name, ref);
      res.setHeader('Location', `/v2/${name}/blobs/uploads/${ref}`);
      res.setHeader('Range', `0-${Math.max(0, current.offset - 1)}`);
    }
    throw err;
  }
};
