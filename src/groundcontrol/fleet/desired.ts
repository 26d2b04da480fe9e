import { createHash } from 'node:crypto';
import type { DesiredImage, DesiredState, SiteMembership } from '../../protocol/index.ts';
import type { UpstreamConfig } from '../config.ts';
import type { GroupRecord } from '../db/records.ts';

interface Merged {
  tags: Set<string>;
  digests: Set<string>;
  /** undefined = every platform (some group did not filter) */
  platforms: Set<string> | undefined;
}

/**
 * The desired state of a satellite from its groups: one entry per repository, tags and digests
 * unioned across groups, platforms from the image or else its group (an image some group wants
 * on every platform is kept on every platform). When all images share one platform filter it
 * moves to the document level. Output is sorted, so equal inputs give equal documents.
 */
export function computeDesired(groups: GroupRecord[], upstream: UpstreamConfig, generation: number, site?: SiteMembership): DesiredState {
  const byRepo = new Map<string, Merged>();
  for (const group of groups) {
    for (const img of group.images) {
      const platforms = img.platforms ?? group.platforms;
      const current = byRepo.get(img.repository);
      if (!current) {
        byRepo.set(img.repository, {
          tags: new Set(img.tags ?? []),
          digests: new Set(img.digests ?? []),
          platforms: platforms ? new Set(platforms) : undefined,
        });
        continue;
      }
      for (const t of img.tags ?? []) current.tags.add(t);
      for (const d of img.digests ?? []) current.digests.add(d);
      if (!platforms) current.platforms = undefined;
      else if (current.platforms) for (const p of platforms) current.platforms.add(p);
    }
  }
  const images: DesiredImage[] = [...byRepo.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([repository, m]) => {
      const image: DesiredImage = { repository };
      if (m.tags.size > 0) image.tags = [...m.tags].sort();
      if (m.digests.size > 0) image.digests = [...m.digests].sort();
      if (m.platforms) image.platforms = [...m.platforms].sort();
      return image;
    });
  const state: DesiredState = { generation, upstream: { ...upstream }, images };
  const shared = sharedPlatforms(images);
  if (shared) {
    state.platforms = shared;
    for (const img of images) delete img.platforms;
  }
  if (site && site.members.length > 0) state.site = site;
  // Each group's policy covers its own images; a satellite merges the policies per repository.
  const trust = groups
    .filter((g) => g.trust)
    .map((g) => ({ name: g.name, mode: g.trust!.mode, keys: [...g.trust!.keys], repositories: [...new Set(g.images.map((i) => i.repository))].sort() }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (trust.length > 0) state.trust = trust;
  return state;
}

function sharedPlatforms(images: DesiredImage[]): string[] | undefined {
  const first = images[0]?.platforms;
  if (!first) return undefined;
  const key = first.join(',');
  return images.every((img) => img.platforms?.join(',') === key) ? first : undefined;
}

/** Hash of everything but the generation: publishing the same content again is not a change. */
export function contentHash(state: DesiredState): string {
  const { generation: _generation, ...content } = state;
  return createHash('sha256').update(JSON.stringify(content)).digest('hex');
}
