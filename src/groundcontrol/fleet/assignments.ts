import { durable } from '../db/db.ts';
import { putSatelliteAssignment, putSiteAssignment, removeSatelliteAssignment, removeSiteAssignment } from '../db/indexes.ts';
import { gcError } from '../errors.ts';
import type { FleetContext } from './context.ts';
import { reconcileDesired, satellitesAtSite } from './reconcile.ts';

/** A group assigned to one satellite, or to every satellite of a site. */
export type Assignment = { group: string; satellite: string; assignedAt: string } | { group: string; site: string; assignedAt: string };

export type AssignmentTarget = { group: string; satellite: string } | { group: string; site: string };

export function listAssignments(ctx: FleetContext): Assignment[] {
  const out: Assignment[] = [];
  for (const { key, value } of ctx.db.satelliteAssignments.getRange({})) out.push({ group: key[0], satellite: key[1], assignedAt: value });
  for (const { key, value } of ctx.db.siteAssignments.getRange({})) out.push({ group: key[0], site: key[1], assignedAt: value });
  return out;
}

/** Assigns; the satellites concerned get a new desired state. Assigning twice is a 409. */
export async function assign(ctx: FleetContext, target: AssignmentTarget): Promise<{ assignment: Assignment; published: string[] }> {
  const at = ctx.now().toISOString();
  const problem = await durable(ctx.db, () => {
    if (!ctx.db.groups.get(target.group)) return gcError('GROUP_UNKNOWN', `no group ${target.group}`);
    if ('satellite' in target) {
      if (!ctx.db.satellites.get(target.satellite)) return gcError('SATELLITE_UNKNOWN', `no satellite ${target.satellite}`);
      const key: [string, string] = [target.group, target.satellite];
      if (ctx.db.satelliteAssignments.get(key) !== undefined) return exists(target);
      putSatelliteAssignment(ctx.db, target.group, target.satellite, at);
    } else {
      const key: [string, string] = [target.group, target.site];
      if (ctx.db.siteAssignments.get(key) !== undefined) return exists(target);
      putSiteAssignment(ctx.db, target.group, target.site, at);
    }
    return undefined;
  });
  if (problem) throw problem;
  ctx.log.info({ ...target }, 'group assigned');
  const published = await reconcileDesired(ctx, affected(ctx, target));
  return { assignment: { ...target, assignedAt: at }, published };
}

export async function unassign(ctx: FleetContext, target: AssignmentTarget): Promise<{ published: string[] }> {
  const found = await durable(ctx.db, () => {
    if ('satellite' in target) {
      if (ctx.db.satelliteAssignments.get([target.group, target.satellite]) === undefined) return false;
      removeSatelliteAssignment(ctx.db, target.group, target.satellite);
    } else {
      if (ctx.db.siteAssignments.get([target.group, target.site]) === undefined) return false;
      removeSiteAssignment(ctx.db, target.group, target.site);
    }
    return true;
  });
  if (!found) throw gcError('ASSIGNMENT_UNKNOWN', `group ${target.group} is not assigned to ${describe(target)}`);
  ctx.log.info({ ...target }, 'group unassigned');
  return { published: await reconcileDesired(ctx, affected(ctx, target)) };
}

function affected(ctx: FleetContext, target: AssignmentTarget): string[] {
  return 'satellite' in target ? [target.satellite] : satellitesAtSite(ctx.db, target.site);
}

function describe(target: AssignmentTarget): string {
  return 'satellite' in target ? `satellite ${target.satellite}` : `site ${target.site}`;
}

function exists(target: AssignmentTarget) {
  return gcError('ASSIGNMENT_EXISTS', `group ${target.group} is already assigned to ${describe(target)}`);
}
