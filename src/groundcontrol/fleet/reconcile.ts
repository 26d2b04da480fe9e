import { encodeMessage, topic, type DesiredMessage, type SiteMembership } from '../../protocol/index.ts';
import { durable, under, type GcDb } from '../db/db.ts';
import type { GroupRecord, SatelliteRecord } from '../db/records.ts';
import type { FleetContext } from './context.ts';
import { computeDesired, contentHash } from './desired.ts';
import { withSiteSecret } from './site-secret.ts';
import { hashableDesired, withUpstreamPassword, withoutUpstreamPassword } from './upstream-secret.ts';

/** Names of the groups a satellite gets: assigned to it directly or to its site. */
export function groupNamesOf(db: GcDb, sat: Pick<SatelliteRecord, 'id' | 'site'>): string[] {
  const names = new Set<string>();
  for (const { key } of db.satelliteAssignments.getRange({})) if (key[1] === sat.id) names.add(key[0]);
  if (sat.site !== null) for (const { key } of db.siteAssignments.getRange({})) if (key[1] === sat.site) names.add(key[0]);
  return [...names].sort();
}

/** Ids of the satellites that get a group, directly or through their site. */
export function satellitesOfGroup(db: GcDb, group: string): string[] {
  const ids = new Set<string>();
  for (const { key } of db.satelliteAssignments.getRange(under(group))) ids.add(key[1]);
  const sites = new Set<string>();
  for (const { key } of db.siteAssignments.getRange(under(group))) sites.add(key[1]);
  if (sites.size > 0) for (const { key, value } of db.satellites.getRange({})) if (value.site !== null && sites.has(value.site)) ids.add(key);
  return [...ids];
}

export function satellitesAtSite(db: GcDb, site: string): string[] {
  const ids: string[] = [];
  for (const { key, value } of db.satellites.getRange({})) if (value.site === site) ids.push(key);
  return ids;
}

/**
 * The blob-sharing members of a site: its satellites that reported a peer URL, by id. Every
 * member gets the same list, so rendezvous hashing names the same owner everywhere.
 */
export function siteMembership(db: GcDb, site: string): SiteMembership {
  const members: SiteMembership['members'] = [];
  for (const { key, value } of db.satellites.getRange({})) {
    if (value.site !== site) continue;
    const url = db.status.get(key)?.state?.peerUrl;
    if (url) members.push({ id: key, url });
  }
  members.sort((a, b) => (a.id < b.id ? -1 : 1));
  return { name: site, members };
}

/**
 * Recomputes the desired state of the given satellites. A satellite whose content changed gets
 * the next generation, stored durably, then published retained (QoS 1) on its desired topic.
 * A satellite that never had a group gets nothing; one that lost its last group gets an empty
 * list. Returns the ids that got a new generation.
 */
export async function reconcileDesired(ctx: FleetContext, ids: Iterable<string>): Promise<string[]> {
  const { db, config } = ctx;
  const upstream = config.upstream;
  const wanted = [...new Set(ids)];
  if (wanted.length === 0) return [];
  if (!upstream) {
    ctx.log.warn({ satellites: wanted.length }, 'no upstream configured: desired states are not published');
    return [];
  }
  const at = ctx.now().toISOString();
  const changed = await durable(db, () => {
    const out: string[] = [];
    for (const id of wanted) {
      const sat = db.satellites.get(id);
      if (!sat) continue;
      const previous = db.desired.get(id);
      const names = groupNamesOf(db, sat);
      if (names.length === 0 && !previous) continue;
      const groups = names.map((n) => db.groups.get(n)).filter((g): g is GroupRecord => g !== undefined);
      const site = sat.site === null ? undefined : withSiteSecret(ctx.siteKey, siteMembership(db, sat.site), id);
      const state = computeDesired(groups, upstream, (previous?.generation ?? 0) + 1, site);
      const hash = contentHash(hashableDesired(state, ctx.secrets));
      if (previous?.contentHash === hash) continue;
      db.desired.put(id, { generation: state.generation, contentHash: hash, state: withoutUpstreamPassword(state), publishedAt: at });
      out.push(id);
    }
    return out;
  });
  for (const id of changed) {
    ctx.log.info({ satelliteId: id, generation: db.desired.get(id)?.generation }, 'desired state changed');
    publishDesired(ctx, id);
  }
  return changed;
}

/**
 * Publishes the stored desired state (the newest, whoever computed it) without waiting for the
 * broker: the database is the truth and is republished when the broker lost our session.
 */
export function publishDesired(ctx: FleetContext, id: string): void {
  const record = ctx.db.desired.get(id);
  if (!record) return;
  const state = withUpstreamPassword(record.state, ctx.config.upstream);
  const message: DesiredMessage = { type: 'desired', satelliteId: id, issuedAt: record.publishedAt, state };
  ctx.publisher.publish(topic(id, 'desired'), encodeMessage(message), { retain: true }).then(
    () => ctx.log.debug({ satelliteId: id, generation: record.generation }, 'desired state published'),
    (err: unknown) => ctx.log.warn({ err, satelliteId: id }, 'desired state not published'),
  );
}

/** After (re)connecting to a broker that lost our session: every stored desired state again. */
export function republishAllDesired(ctx: FleetContext): number {
  let n = 0;
  for (const { key } of ctx.db.desired.getRange({})) {
    if (!ctx.db.satellites.get(key)) continue;
    publishDesired(ctx, key);
    n++;
  }
  return n;
}
