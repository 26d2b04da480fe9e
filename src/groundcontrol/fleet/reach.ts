import { satellitesAtSite, satellitesOfGroup } from '../db/indexes.ts';
import { gcError } from '../errors.ts';
import type { FleetContext } from './context.ts';

/** How many satellites a change reaches, and the first few by id. */
export interface Reach {
  count: number;
  first: Array<{ id: string; name: string }>;
}

export type ReachTarget = { group: string } | { group: string; site: string } | { group: string; satellite: string } | { site: string } | { satellite: string };

/** Satellites named in a reach answer (the count covers them all). */
export const REACH_FIRST = 10;

/**
 * The satellites a change concerns, read from the indexes only (O(reach), never a table):
 * - {group}: every satellite that gets the group now (editing or deleting it reaches these);
 * - {group, site} / {group, satellite}: those an assignment or unassignment changes, i.e. the
 *   site's satellites (or the one) that do not get the group some other way;
 * - {site} / {satellite}: the satellites of a site, or one (commands).
 */
export function reachIds(ctx: FleetContext, t: ReachTarget): string[] {
  const { db } = ctx;
  if ('group' in t && !('site' in t) && !('satellite' in t)) return satellitesOfGroup(db, t.group).sort();
  if ('satellite' in t) {
    if (!db.satellites.get(t.satellite)) throw gcError('SATELLITE_UNKNOWN', `no satellite ${t.satellite}`);
    if (!('group' in t)) return [t.satellite];
    return gets(ctx, t.satellite, t.group, { satellite: t.satellite }) ? [] : [t.satellite];
  }
  const ids = satellitesAtSite(db, t.site);
  if (!('group' in t)) return ids;
  return ids.filter((id) => !gets(ctx, id, t.group, { site: t.site }));
}

/** Whether a satellite gets a group through some assignment other than `except`. */
function gets(ctx: FleetContext, id: string, group: string, except: { site: string } | { satellite: string }): boolean {
  const { db } = ctx;
  if (!('satellite' in except) && db.satelliteAssignments.get([group, id]) !== undefined) return true;
  const site = db.satellites.get(id)?.site ?? null;
  if (site !== null && !('site' in except && except.site === site) && db.siteAssignments.get([group, site]) !== undefined) return true;
  return false;
}

export function reachOf(ctx: FleetContext, t: ReachTarget): Reach {
  const ids = reachIds(ctx, t);
  return { count: ids.length, first: ids.slice(0, REACH_FIRST).map((id) => ({ id, name: ctx.db.satellites.get(id)?.name ?? id })) };
}
