import type { Handler } from '../context.ts';
import { sendUploadStatus } from './upload-common.ts';
import { sendEmpty } from '../http.ts';

/** dist-spec end-13: GET the upload's progress, so an interrupted client can resume. */
export const getUploadStatus: Handler = async ({ res, name, ref, store }) => {
  const status = store.getUpload(name, ref);
  sendUploadStatus(res, 204, name, ref, status.offset);
};

/** DELETE cancels the session and frees its bytes. */
export const cancelUpload: Handler = async ({ res, name, ref, store }) => {
  await store.cancelUpload(name, ref);
  sendEmpty(res, 204);
};
