import { readFile } from 'node:fs/promises';
import type { Store } from '../store/index.ts';
import type { ImageRow, ImageSource } from './types.ts';

/** Configs larger than this are not read for their platform (a real one is a few KiB). */
const MAX_CONFIG_BYTES = 1 << 20;

export type ImageCatalogStore = Pick<Store, 'listRepositories' | 'tagsOf' | 'manifestsOf' | 'getManifest' | 'blobSize' | 'blobPath' | 'cacheIndex' | 'pulls'>;

/**
 * Every stored image: each tag, plus manifests no tag and no stored index points at. Where it came
 * from is read from the records that already exist: sync's held references, the pull-through
 * cache's index, else a push.
 */
export async function listImages(store: ImageCatalogStore, heldBySync: Set<string>): Promise<ImageRow[]> {
  const rows: ImageRow[] = [];
  let last: string | undefined;
  for (;;) {
    const repos = store.listRepositories({ n: 100, ...(last !== undefined ? { last } : {}) });
    if (repos.length === 0) break;
    for (const repo of repos) rows.push(...(await imagesOf(store, repo, heldBySync)));
    last = repos[repos.length - 1];
  }
  return rows;
}

async function imagesOf(store: ImageCatalogStore, repo: string, held: Set<string>): Promise<ImageRow[]> {
  const out: ImageRow[] = [];
  const tagged = new Set<string>();
  const children = new Set<string>();
  const describe = async (tag: string | null, digest: string) => {
    const found = store.getManifest(repo, digest);
    if (!found) return;
    const doc = parseJson(found.content);
    let size = found.content.length;
    const platforms: string[] = [];
    if (found.record.children.length > 0) {
      for (const m of (doc.manifests as Array<{ digest?: string; platform?: PlatformJson }> | undefined) ?? []) {
        const child = m.digest ? store.getManifest(repo, m.digest) : undefined;
        if (!child) continue;
        children.add(child.digest);
        size += child.content.length + sumBlobs(store, child.record.blobs);
        if (m.platform) platforms.push(platformName(m.platform));
      }
    } else {
      size += sumBlobs(store, found.record.blobs);
      const p = await configPlatform(store, (doc.config as { digest?: string } | undefined)?.digest);
      if (p) platforms.push(p);
    }
    const pulled = store.pulls.lastPulled(repo, digest);
    out.push({
      repository: repo,
      tag,
      digest,
      mediaType: found.record.mediaType,
      sizeBytes: size,
      platforms,
      source: sourceOf(store, held, repo, digest),
      lastPulledAt: pulled === undefined ? null : new Date(pulled).toISOString(),
    });
  };
  for (const [tag, digest] of [...store.tagsOf(repo)].sort(([a], [b]) => a.localeCompare(b))) {
    tagged.add(digest);
    await describe(tag, digest);
  }
  for (const digest of store.manifestsOf(repo)) {
    if (tagged.has(digest) || children.has(digest)) continue;
    await describe(null, digest);
  }
  // An index described after its child was listed as untagged: drop that child row.
  return out.filter((r) => r.tag !== null || !children.has(r.digest));
}

function sourceOf(store: ImageCatalogStore, held: Set<string>, repo: string, digest: string): ImageSource {
  if (held.has(digest)) return 'sync';
  if (store.cacheIndex.isCachedManifest(repo, digest)) return 'proxy';
  return 'push';
}

function sumBlobs(store: ImageCatalogStore, digests: string[]): number {
  return digests.reduce((n, d) => n + (store.blobSize(d) ?? 0), 0);
}

interface PlatformJson {
  os?: string;
  architecture?: string;
  variant?: string;
}

function platformName(p: PlatformJson): string {
  return [p.os ?? '?', p.architecture ?? '?', p.variant].filter(Boolean).join('/');
}

async function configPlatform(store: ImageCatalogStore, digest: string | undefined): Promise<string | undefined> {
  if (!digest) return undefined;
  const size = store.blobSize(digest);
  if (size === undefined || size > MAX_CONFIG_BYTES) return undefined;
  try {
    const doc = parseJson(await readFile(store.blobPath(digest)));
    return doc.os || doc.architecture ? platformName(doc as PlatformJson) : undefined;
  } catch {
    return undefined;
  }
}

function parseJson(buf: Buffer): Record<string, unknown> {
  try {
    const v = JSON.parse(buf.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
