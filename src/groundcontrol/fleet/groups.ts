import { parseDesiredState, type DesiredImage, type GroupTrust } from '../../protocol/index.ts';
import { durable, under } from '../db/db.ts';
import { removeSatelliteAssignment, removeSiteAssignment } from '../db/indexes.ts';
import type { GroupRecord } from '../db/records.ts';
import { isSatelliteError } from '../../lib/errors.ts';
import { gcError } from '../errors.ts';
import type { FleetContext } from './context.ts';
import { reconcileDesired, satellitesOfGroup } from './reconcile.ts';

export interface GroupInput {
  name: string;
  images: DesiredImage[];
  platforms?: string[] | undefined;
  trust?: GroupTrust | undefined;
}

export interface GroupView extends GroupRecord {
  satellites: string[];
  sites: string[];
}

export function viewGroup(ctx: FleetContext, group: GroupRecord): GroupView {
  const satellites = [...ctx.db.satelliteAssignments.getKeys(under(group.name))].map((k) => k[1]);
  const sites = [...ctx.db.siteAssignments.getKeys(under(group.name))].map((k) => k[1]);
  return { ...group, satellites, sites };
}

export function listGroups(ctx: FleetContext): GroupView[] {
  return [...ctx.db.groups.getRange({})].map(({ value }) => viewGroup(ctx, value));
}

export function getGroup(ctx: FleetContext, name: string): GroupRecord {
  const group = ctx.db.groups.get(name);
  if (!group) throw gcError('GROUP_UNKNOWN', `no group ${name}`);
  return group;
}

/**
 * Creates or replaces a group. Images are checked like a desired state (repository names, tags,
 * digests). When the content changed, every satellite that gets the group is recomputed.
 */
export async function applyGroup(ctx: FleetContext, input: GroupInput): Promise<{ group: GroupView; created: boolean; changed: boolean; published: string[] }> {
  // Same checks a satellite applies to the desired state, so a group can never produce one it rejects.
  try {
    parseDesiredState(
      {
        generation: 0,
        upstream: { url: 'http://groundcontrol.invalid' },
        images: input.images,
        ...(input.platforms ? { platforms: input.platforms } : {}),
        ...(input.trust ? { trust: [{ name: input.name, ...input.trust }] } : {}),
      },
      `group ${input.name}`,
    );
  } catch (err) {
    if (!isSatelliteError(err, 'DESIRED_STATE_INVALID')) throw err;
    throw gcError('BODY_INVALID', err.message, { detail: err.detail });
  }
  const at = ctx.now().toISOString();
  const outcome = await durable(ctx.db, () => {
    const previous = ctx.db.groups.get(input.name);
    const record: GroupRecord = {
      name: input.name,
      images: input.images,
      ...(input.platforms ? { platforms: input.platforms } : {}),
      ...(input.trust ? { trust: input.trust } : {}),
      createdAt: previous?.createdAt ?? at,
      updatedAt: at,
    };
    const same = previous !== undefined && JSON.stringify([previous.images, previous.platforms, previous.trust]) === JSON.stringify([record.images, record.platforms, record.trust]);
    if (same) return { record: previous, created: false, changed: false };
    ctx.db.groups.put(input.name, record);
    return { record, created: previous === undefined, changed: true };
  });
  let published: string[] = [];
  if (outcome.changed) {
    ctx.log.info({ group: input.name, images: input.images.length, created: outcome.created }, 'group applied');
    published = await reconcileDesired(ctx, satellitesOfGroup(ctx.db, input.name));
  }
  return { group: viewGroup(ctx, outcome.record), created: outcome.created, changed: outcome.changed, published };
}

/** Deletes a group and its assignments; its satellites are recomputed without it. */
export async function deleteGroup(ctx: FleetContext, name: string): Promise<{ published: string[] }> {
  const affected = satellitesOfGroup(ctx.db, name);
  const found = await durable(ctx.db, () => {
    if (!ctx.db.groups.get(name)) return false;
    ctx.db.groups.remove(name);
    for (const key of ctx.db.satelliteAssignments.getKeys(under(name))) removeSatelliteAssignment(ctx.db, name, key[1]);
    for (const key of ctx.db.siteAssignments.getKeys(under(name))) removeSiteAssignment(ctx.db, name, key[1]);
    return true;
  });
  if (!found) throw gcError('GROUP_UNKNOWN', `no group ${name}`);
  ctx.log.info({ group: name }, 'group deleted');
  return { published: await reconcileDesired(ctx, affected) };
}
