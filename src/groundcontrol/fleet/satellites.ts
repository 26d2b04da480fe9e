import { randomBytes } from 'node:crypto';
import { topic, type ChannelName } from '../../protocol/index.ts';
import { durable, under } from '../db/db.ts';
import { putSatellite, removeSatelliteRecords, tokensOf } from '../db/indexes.ts';
import type { DesiredRecord, SatelliteRecord, StatusRecord, TokenRecord } from '../db/records.ts';
import { gcError } from '../errors.ts';
import type { FleetContext } from './context.ts';
import { groupNamesOf, reconcileDesired, satellitesAtSite } from './reconcile.ts';
import { pageSatellites, type StatusPage, type StatusQuery } from './status.ts';
import { putRegistrationToken, removeTokensOf, type NewToken } from './tokens.ts';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A readable, unique, topic-safe id: "<name slug>-<6 random chars>" (matches SATELLITE_ID_RE). */
export function newSatelliteId(name: string): string {
  const slug =
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40)
      .replace(/-+$/, '') || 'sat';
  const bytes = randomBytes(6);
  let suffix = '';
  for (const b of bytes) suffix += ALPHABET[b % ALPHABET.length];
  return `${slug}-${suffix}`;
}

/** What the API shows of a satellite: its record without secrets, plus its groups. */
export type SatelliteView = Pick<SatelliteRecord, 'id' | 'name' | 'site' | 'createdAt' | 'registeredAt' | 'hostname' | 'version'> & {
  groups: string[];
};

export function viewSatellite(ctx: FleetContext, sat: SatelliteRecord): SatelliteView {
  const { mqttPasswordHash: _hash, ...rest } = sat;
  return { ...rest, groups: groupNamesOf(ctx.db, sat) };
}

export function getSatellite(ctx: FleetContext, id: string): SatelliteRecord {
  const sat = ctx.db.satellites.get(id);
  if (!sat) throw gcError('SATELLITE_UNKNOWN', `no satellite ${id}`);
  return sat;
}

/** One page of satellites matching the filter, in id order (fleet/status.ts pages them). */
export function listSatellites(ctx: FleetContext, q: StatusQuery = {}): { satellites: SatelliteView[]; page: StatusPage } {
  const { satellites, page } = pageSatellites(ctx, q);
  return { satellites: satellites.map((sat) => viewSatellite(ctx, sat)), page };
}

/** Creates a satellite and its first registration token; publishes its site's groups, if any. */
export async function createSatellite(
  ctx: FleetContext,
  input: { name: string; site?: string | null | undefined; ttlSeconds?: number | undefined },
): Promise<{ satellite: SatelliteView; registration: NewToken }> {
  const now = ctx.now();
  const sat: SatelliteRecord = {
    id: newSatelliteId(input.name),
    name: input.name,
    site: input.site ?? null,
    createdAt: now.toISOString(),
    registeredAt: null,
    hostname: null,
    version: null,
    mqttPasswordHash: null,
  };
  const registration = await durable(ctx.db, () => {
    putSatellite(ctx.db, sat);
    return putRegistrationToken(ctx.db, {
      satelliteId: sat.id,
      site: sat.site,
      ttlSeconds: input.ttlSeconds ?? ctx.config.registrationTokenTtlSeconds,
      now,
    });
  });
  ctx.log.info({ satelliteId: sat.id, name: sat.name, site: sat.site }, 'satellite created');
  await reconcileDesired(ctx, [sat.id]);
  return { satellite: viewSatellite(ctx, sat), registration };
}

/** Renames or moves a satellite; moving it to another site recomputes its desired state. */
export async function updateSatellite(
  ctx: FleetContext,
  id: string,
  patch: { name?: string | undefined; site?: string | null | undefined },
): Promise<SatelliteView> {
  const updated = await durable(ctx.db, () => {
    const sat = ctx.db.satellites.get(id);
    if (!sat) return undefined;
    const next: SatelliteRecord = { ...sat };
    if (patch.name !== undefined) next.name = patch.name;
    if (patch.site !== undefined) next.site = patch.site;
    const membershipChanged = putSatellite(ctx.db, next);
    return { before: sat, after: next, membershipChanged };
  });
  if (!updated) throw gcError('SATELLITE_UNKNOWN', `no satellite ${id}`);
  if (updated.before.site !== updated.after.site) {
    ctx.log.info({ satelliteId: id, from: updated.before.site, to: updated.after.site }, 'satellite moved');
    // Its own groups may have changed; a site whose blob-sharing members changed (it had a peer
    // URL) is recomputed for every member.
    await reconcileDesired(ctx, [id, ...updated.membershipChanged.flatMap((site) => satellitesAtSite(ctx.db, site))]);
  }
  return viewSatellite(ctx, updated.after);
}

/**
 * Forgets a satellite: record, assignments, tokens, status, commands, its MQTT credentials, and
 * the retained messages on its topics (so the broker forgets it too).
 */
export async function deleteSatellite(ctx: FleetContext, id: string): Promise<void> {
  const { db } = ctx;
  const found = await durable(db, () => {
    const removed = removeSatelliteRecords(db, id);
    if (!removed) return undefined;
    removeTokensOf(db, id);
    for (const { key } of db.commands.getRange(under(id))) db.commands.remove(key);
    return removed;
  });
  if (!found) throw gcError('SATELLITE_UNKNOWN', `no satellite ${id}`);
  // Its site's members stop sharing blobs with it (if it was sharing).
  if (found.site !== null && found.wasPeer) await reconcileDesired(ctx, satellitesAtSite(db, found.site));
  ctx.log.info({ satelliteId: id }, 'satellite deleted');
  const retained: ChannelName[] = ['desired', 'state', 'presence'];
  for (const channel of retained) {
    // An empty retained message deletes the retained one [MQTT-3.3.1-10].
    ctx.publisher.publish(topic(id, channel), Buffer.alloc(0), { retain: true }).catch((err: unknown) => {
      ctx.log.warn({ err, satelliteId: id, channel }, 'retained message not cleared');
    });
  }
  await ctx.credentialsChanged([id]);
}

/** A new one-time token for an existing satellite: registering with it rotates its MQTT password. */
export async function createSatelliteToken(ctx: FleetContext, id: string, ttlSeconds?: number): Promise<NewToken> {
  const now = ctx.now();
  const token = await durable(ctx.db, () => {
    const sat = ctx.db.satellites.get(id);
    if (!sat) return undefined;
    return putRegistrationToken(ctx.db, {
      satelliteId: id,
      site: sat.site,
      ttlSeconds: ttlSeconds ?? ctx.config.registrationTokenTtlSeconds,
      now,
    });
  });
  if (!token) throw gcError('SATELLITE_UNKNOWN', `no satellite ${id}`);
  return token;
}

/** Everything known about one satellite, for GET /satellites/:id. */
export function showSatellite(
  ctx: FleetContext,
  id: string,
): SatelliteView & { desired: DesiredRecord | null; status: StatusRecord | null; tokens: TokenRecord[] } {
  const sat = getSatellite(ctx, id);
  const tokens = tokensOf(ctx.db, id).map(([, t]) => t);
  return {
    ...viewSatellite(ctx, sat),
    desired: ctx.db.desired.get(id) ?? null,
    status: ctx.db.status.get(id) ?? null,
    tokens,
  };
}
