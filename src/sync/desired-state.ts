import type { DesiredState } from '../protocol/desired-state.ts';

export { parseDesiredState, desiredStateSchema, type DesiredState, type DesiredImage } from '../protocol/desired-state.ts';

/** One reference to replicate: a tag (moving) or a pinned digest. */
export interface DesiredRef {
  repository: string;
  reference: string;
  platforms: string[] | undefined;
}

/**
 * Flattens a document to its references, merging duplicates. The platform filter is the image's,
 * else the document's, else the satellite's default (config sync.platforms).
 */
export function desiredRefs(state: DesiredState, defaultPlatforms?: string[]): DesiredRef[] {
  const out = new Map<string, DesiredRef>();
  for (const img of state.images) {
    const platforms = img.platforms ?? state.platforms ?? defaultPlatforms;
    for (const reference of [...(img.tags ?? []), ...(img.digests ?? [])]) {
      out.set(`${img.repository}@${reference}`, { repository: img.repository, reference, platforms });
    }
  }
  return [...out.values()];
}

export function refKey(ref: { repository: string; reference: string }): string {
  return `${ref.repository}:${ref.reference}`;
}
