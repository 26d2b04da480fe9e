import type { Store } from '../store/index.ts';
import type { HoldsImage } from './mutate.ts';

/**
 * policy exists: the satellite holds the tag's manifest and every blob of it; for an index, at
 * least one platform's image completely (the pod is not scheduled yet, so its node's platform is
 * not known: the platforms the satellite stores for the tag are what it can serve).
 */
export function storeHolds(store: Pick<Store, 'getManifest' | 'hasBlob'>): HoldsImage {
  const complete = (repo: string, ref: string, depth: number): boolean => {
    const m = store.getManifest(repo, ref);
    if (!m) return false;
    if (m.record.children.length > 0) return depth === 0 && m.record.children.some((c) => complete(repo, c, depth + 1));
    return m.record.blobs.every((d) => store.hasBlob(d));
  };
  return (repo, reference) => complete(repo, reference, 0);
}
