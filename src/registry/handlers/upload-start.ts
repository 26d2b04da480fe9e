import { parseDigest } from '../../lib/digest.ts';
import { isRepositoryName } from '../../oci/names.ts';
import { contentLength, hasBody } from '../http.ts';
import { registryError } from '../errors.ts';
import type { Handler } from '../context.ts';
import { sendBlobCreated, sendUploadStatus } from './upload-common.ts';

/**
 * dist-spec end-4a/4b/11: POST /v2/<name>/blobs/uploads/
 * ?mount=<digest>&from=<repo>: link an existing blob (falls back to an upload session if we lack it);
 * ?digest=<digest> with a body: monolithic upload; otherwise open a session.
 */
export const startUpload: Handler = async ({ req, res, url, name, store, signal, client, limits }) => {
  const mount = url.searchParams.get('mount');
  if (mount !== null) {
    const digest = parseDigest(mount).digest;
    const from = url.searchParams.get('from');
    // Only from a repository that holds the blob (as distribution); else an ordinary upload session.
    if (from !== null && isRepositoryName(from)) {
      const mounted = await store.mountBlob(name, digest, from);
      if (mounted) {
        req.resume();
        sendBlobCreated(res, name, digest);
        return;
      }
    }
  }
  const digestParam = url.searchParams.get('digest');
  if (digestParam !== null && mount === null) {
    const digest = parseDigest(digestParam).digest;
    const size = contentLength(req);
    await store.ingestBlob(req, { digest, ...(size !== undefined ? { size } : {}) }, { repo: name, signal });
    sendBlobCreated(res, name, digest);
    return;
  }
  if (hasBody(req)) req.resume();
  // Abandoned sessions hold a file, an index record and hash state until the sweep: bound them.
  const open = store.countUploads(client);
  if (open.total >= limits.maxUploadSessions || open.client >= limits.maxUploadSessionsPerClient) {
    res.setHeader('Retry-After', '60');
    const which = open.client >= limits.maxUploadSessionsPerClient ? `${limits.maxUploadSessionsPerClient} from this address` : `${limits.maxUploadSessions} in total`;
    throw registryError('TOOMANYREQUESTS', `too many open upload sessions (${which}): finish or cancel some`);
  }
  const upload = await store.createUpload(name, client);
  sendUploadStatus(res, 202, name, upload.id, 0);
};
