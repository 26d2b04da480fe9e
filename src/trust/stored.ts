import type { Store } from '../store/index.ts';
import { SatelliteError } from '../lib/errors.ts';
import type { SignatureSource } from './check.ts';

/**
 * The signatures kept in the store beside an image (replicateSignatures), read like the upstream's:
 * a re-check (a key rotation, a restart) works with the WAN down. Absent content answers as the
 * upstream's 404 does (UPSTREAM_NOT_FOUND), so checkSignatures treats it alike.
 */
export function storedSignatures(store: Pick<Store, 'getManifest' | 'openBlob' | 'blobSize'>, storeRepo: string): SignatureSource {
  const absent = (what: string) => new SatelliteError('UPSTREAM_NOT_FOUND', `${what} is not in the store`);
  return {
    async getManifest(_repo, reference) {
      const m = store.getManifest(storeRepo, reference);
      if (!m) throw absent(`${storeRepo}:${reference}`);
      return { digest: m.digest, mediaType: m.record.mediaType, body: m.content };
    },
    async fetchBlob(_repo, digest) {
      const size = store.blobSize(digest);
      if (size === undefined) throw absent(`blob ${digest}`);
      return { status: 200, start: 0, total: size, body: store.openBlob(digest) };
    },
  };
}
