import type { Logger } from 'pino';
import { isDigest } from '../lib/digest.ts';
import { isSatelliteError } from '../lib/errors.ts';
import type { Store, SyncState } from '../store/index.ts';

/** What sync has put in the store: [repository, tag or digest] -> manifest digests of that image. */
export type SyncedRefs = Pick<SyncState, 'heldRefs' | 'forgetHeld'>;

/**
 * Untags what is no longer desired and deletes the manifests only removed images used (indexes
 * before their children). Blobs go with the next garbage collection. Content pushed by clients,
 * not by sync, is never touched.
 */
export async function pruneRemoved(
  store: Store,
  synced: SyncedRefs,
  keep: Map<string, Set<string>>,
  keepRefs: Set<string>,
  /** Digests a still-desired tag pointed at before it moved. */
  replaced: Map<string, Set<string>>,
  log: Logger,
): Promise<{ untagged: number; manifestsDeleted: number }> {
  let untagged = 0;
  let manifestsDeleted = 0;
  const candidates = new Map<string, Set<string>>([...replaced].map(([r, s]) => [r, new Set(s)]));
  for (const value of synced.heldRefs()) {
    const { repository: repo, reference } = value;
    if (keepRefs.has(`${repo}:${reference}`)) continue;
    if (!isDigest(reference)) {
      const current = store.getManifest(repo, reference);
      // Only remove the tag if it still points at what sync put there.
      if (current && value.digests.includes(current.digest)) {
        await store.deleteTag(repo, reference).catch(ignoreUnknown);
        untagged++;
      }
    }
    const set = candidates.get(repo) ?? new Set<string>();
    for (const d of value.digests) set.add(d);
    candidates.set(repo, set);
    await synced.forgetHeld(repo, reference);
  }
  for (const [repo, digests] of candidates) {
    const kept = keep.get(repo) ?? new Set<string>();
    const doomed = [...digests].filter((d) => !kept.has(d));
    // Indexes first: a child listed by an index in the repository cannot be deleted under it.
    doomed.sort((a, b) => store.childrenOf(b).length - store.childrenOf(a).length);
    for (const digest of doomed) {
      try {
        await store.deleteManifest(repo, digest);
        manifestsDeleted++;
      } catch (err) {
        if (isSatelliteError(err, 'MANIFEST_REFERENCED')) log.info({ repo, digest }, 'manifest still referenced; kept');
        else ignoreUnknown(err);
      }
    }
  }
  return { untagged, manifestsDeleted };
}

function ignoreUnknown(err: unknown): void {
  if (isSatelliteError(err, 'MANIFEST_UNKNOWN')) return;
  throw err;
}
