import type { FleetContext } from '../fleet/context.ts';

/** Why a change to groups or assignments reached no satellite, when it could not. */
export const NO_UPSTREAM = 'Ground Control has no upstream.url';

/**
 * Adds `notPublished` to a group/assignment answer while Ground Control has no upstream: desired
 * states need the registry satellites fetch from, so none was computed (not "0 satellites").
 */
export function publishNote<T extends object>(fleet: FleetContext, body: T): T & { notPublished?: string } {
  return fleet.config.upstream ? body : { ...body, notPublished: NO_UPSTREAM };
}
