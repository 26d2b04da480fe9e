import type { Logger } from 'pino';
import { isDigest } from '../lib/digest.ts';
import { parseManifest } from '../oci/manifest.ts';
import type { ImageManifest, Store } from '../store/index.ts';
import type { DesiredRef } from './desired-state.ts';
import { selectChildren } from './platform.ts';
import type { UpstreamPort } from './upstream-port.ts';

/** One reference resolved against the upstream: what to store and which blobs it needs. */
export interface ImagePlan {
  ref: DesiredRef;
  /** Digest the reference resolved to (index or manifest). */
  digest: string;
  /** Platform manifests first, the index last: the commit order. */
  manifests: ImageManifest[];
  blobs: Array<{ digest: string; size: number }>;
  /** Already stored and tagged as desired: nothing to do. */
  upToDate: boolean;
}

/**
 * Resolves a tag or digest upstream (tags are re-resolved on every sync, so a moved tag is noticed)
 * and expands an index to the platforms the filter keeps.
 */
export async function planImage(
  upstream: UpstreamPort,
  store: Store,
  ref: DesiredRef,
  log: Logger,
  signal: AbortSignal,
): Promise<ImagePlan> {
  const top = await topManifest(upstream, store, ref, signal);
  const parsed = parseManifest(top.body, top.mediaType);
  const manifests: ImageManifest[] = [];
  const blobs = new Map<string, number>();
  if (parsed.isIndex) {
    const children = selectChildren(parsed.manifests, ref.platforms);
    if (children.length === 0) {
      log.warn({ repository: ref.repository, reference: ref.reference, platforms: ref.platforms }, 'no platform of the index matches the filter');
    }
    for (const child of children) {
      const local = store.getManifest(ref.repository, child.digest);
      const m = local
        ? { digest: child.digest, mediaType: local.record.mediaType, body: local.content }
        : await upstream.getManifest(ref.repository, child.digest, signal);
      const childParsed = parseManifest(m.body, m.mediaType);
      if (childParsed.isIndex) continue; // nested indexes are not images: skip rather than recurse unbounded
      manifests.push({ digest: m.digest, mediaType: childParsed.mediaType, content: m.body });
      for (const b of childParsed.blobs) blobs.set(b.digest, b.size);
    }
  } else {
    for (const b of parsed.blobs) blobs.set(b.digest, b.size);
  }
  manifests.push({ digest: top.digest, mediaType: parsed.mediaType, content: top.body });
  const tagged = store.getManifest(ref.repository, ref.reference);
  // Blobs too: a manifest the pull-through cache stored may still lack some of its blobs.
  const upToDate =
    tagged?.digest === top.digest && manifests.every((m) => store.getManifest(ref.repository, m.digest)) && [...blobs.keys()].every((d) => store.hasBlob(d));
  return {
    ref,
    digest: top.digest,
    manifests,
    blobs: [...blobs].map(([digest, size]) => ({ digest, size })),
    upToDate,
  };
}

/**
 * The manifest the reference names, with as few round trips as it takes: none for a digest already
 * stored (content-addressed), one conditional GET for a stored tag (304 when it did not move: the
 * body is read locally), else one GET. Never a HEAD and then a GET of the same manifest.
 */
async function topManifest(
  upstream: UpstreamPort,
  store: Store,
  ref: DesiredRef,
  signal: AbortSignal,
): Promise<{ digest: string; mediaType: string; body: Buffer }> {
  const stored = store.getManifest(ref.repository, ref.reference);
  const local = stored && { digest: stored.digest, mediaType: stored.record.mediaType, body: stored.content };
  if (local && isDigest(ref.reference)) return local;
  if (local && upstream.getManifestIfChanged) {
    return (await upstream.getManifestIfChanged(ref.repository, ref.reference, local.digest, signal)) ?? local;
  }
  return upstream.getManifest(ref.repository, ref.reference, signal);
}
