import type { Descriptor, Platform } from '../oci/manifest.ts';

/** "os/arch[/variant]" matches a platform; a filter without variant matches every variant. */
export function matchesPlatform(filter: string, platform: Platform | undefined): boolean {
  if (!platform) return false;
  const [os, architecture, variant] = filter.split('/');
  if (platform.os !== os || platform.architecture !== architecture) return false;
  return variant === undefined || platform.variant === variant;
}

/** Children of an index kept under a filter; no filter keeps all. Attestations (unknown/unknown) go too. */
export function selectChildren(children: Descriptor[], filters: string[] | undefined): Descriptor[] {
  if (!filters || filters.length === 0) return children;
  return children.filter((c) => filters.some((f) => matchesPlatform(f, c.platform)));
}
