import type { Store, VerifyReport } from '../store/index.ts';

export interface VerifyRequest {
  repair: boolean;
  onProgress?: (p: { blobsDone: number; blobs: number; bytesDone: number; bytes: number }) => void;
  signal?: AbortSignal;
}

/**
 * The one blob verification both the admin socket (`satellite verify`) and Ground Control's
 * `verify` command run: re-hash every blob (the store refuses a second one while one runs,
 * VERIFY_RUNNING); with repair, the images that lost a blob are incomplete now, so a sync run
 * starts and fetches it again.
 */
export function blobVerifier(store: Pick<Store, 'verifyBlobs'>, sync: { trigger(): void }): (req: VerifyRequest) => Promise<VerifyReport> {
  return async ({ repair, onProgress, signal }) => {
    const report = await store.verifyBlobs({ repair, ...(onProgress ? { onProgress } : {}), ...(signal ? { signal } : {}) });
    if (repair && report.bad.length > 0) sync.trigger();
    return report;
  };
}
