import { encodeMessage, topic, type DesiredMessage, type DesiredState, type SiteMembership } from '../../protocol/index.ts';
import { durable, type GcDb } from '../db/db.ts';
import { groupsOfSite, putDesired, sitePeerMembers, under } from '../db/indexes.ts';
import type { DesiredRecord, GroupRecord, SatelliteRecord } from '../db/records.ts';
import type { FleetContext } from './context.ts';
import { computeDesired, contentHash } from './desired.ts';
import { withSiteSecret } from './site-secret.ts';
import { hashableDesired, withUpstreamPassword, withoutUpstreamPassword } from './upstream-secret.ts';

export { groupNamesOf, satellitesAtSite, satellitesOfGroup } from '../db/indexes.ts';

/**
 * The blob-sharing members of a site: its satellites that reported a peer URL, by id. Every
 * member gets the same list, so rendezvous hashing names the same owner everywhere.
 */
export function siteMembership(db: GcDb, site: string): SiteMembership {
  return { name: site, members: sitePeerMembers(db, site) };
}

/**
 * One reconcile's memo: satellites with the same site, groups and site membership (member or not:
 * only members get the site secret) get the same content, so each site's membership and each
 * distinct desired state is computed once.
 */
class DesiredCache {
  readonly #ctx: FleetContext;
  readonly #upstream: NonNullable<FleetContext['config']['upstream']>;
  readonly #sites = new Map<string, { plain: SiteMembership; members: Set<string>; withSecret: SiteMembership | undefined }>();
  readonly #siteGroups = new Map<string, string[]>();
  readonly #groups = new Map<string, GroupRecord | undefined>();
  readonly #contents = new Map<string, { state: DesiredState; hash: string }>();

  constructor(ctx: FleetContext, upstream: NonNullable<FleetContext['config']['upstream']>) {
    this.#ctx = ctx;
    this.#upstream = upstream;
  }

  /** The stored form (no upstream password, generation 0) and its content hash. */
  content(sat: SatelliteRecord, names: string[]): { state: DesiredState; hash: string } {
    const site = sat.site === null ? undefined : this.#site(sat.site);
    const member = site?.members.has(sat.id) ?? false;
    const key = JSON.stringify([sat.site, names, member]);
    let found = this.#contents.get(key);
    if (!found) {
      const groups = names.map((n) => this.#group(n)).filter((g): g is GroupRecord => g !== undefined);
      let membership: SiteMembership | undefined;
      if (site) membership = member ? (site.withSecret ??= withSiteSecret(this.#ctx.siteKey, site.plain, sat.id)) : site.plain;
      const state = computeDesired(groups, this.#upstream, 0, membership);
      // Trust material travels with the desired state (public key only): a satellite learns a rotated
      // bundle key with its next generation, over this authenticated channel (docs/bundles.md).
      if (this.#ctx.bundleKeyPem) state.bundleKeys = [this.#ctx.bundleKeyPem];
      found = { state: withoutUpstreamPassword(state), hash: contentHash(hashableDesired(state, this.#ctx.secrets)) };
      this.#contents.set(key, found);
    }
    return found;
  }

  /** Names of the groups a satellite gets (its own and its site's, the site's read once); sorted. */
  groupNames(sat: SatelliteRecord): string[] {
    const names = new Set<string>();
    for (const k of this.#ctx.db.satelliteGroups.getKeys(under(sat.id))) names.add(k[1]);
    if (sat.site !== null) {
      let site = this.#siteGroups.get(sat.site);
      if (!site) this.#siteGroups.set(sat.site, (site = groupsOfSite(this.#ctx.db, sat.site)));
      for (const g of site) names.add(g);
    }
    return [...names].sort();
  }

  #group(name: string): GroupRecord | undefined {
    if (!this.#groups.has(name)) this.#groups.set(name, this.#ctx.db.groups.get(name));
    return this.#groups.get(name);
  }

  #site(name: string) {
    let s = this.#sites.get(name);
    if (!s) {
      const plain = siteMembership(this.#ctx.db, name);
      this.#sites.set(name, (s = { plain, members: new Set(plain.members.map((m) => m.id)), withSecret: undefined }));
    }
    return s;
  }
}

/**
 * Recomputes the desired state of the given satellites. A satellite whose content changed gets
 * the next generation, stored durably, then published retained (QoS 1) on its desired topic.
 * A satellite that never had a group gets nothing; one that lost its last group gets an empty
 * list. Reads per satellite are point reads and index ranges (its groups); each site's
 * membership is read once. Returns the ids that got a new generation.
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
    const cache = new DesiredCache(ctx, upstream);
    const out: Array<[string, DesiredRecord]> = [];
    for (const id of wanted) {
      const sat = db.satellites.get(id);
      if (!sat) continue;
      const previous = db.generations.get(id);
      const names = cache.groupNames(sat);
      if (names.length === 0 && (previous?.desired ?? null) === null) continue;
      const { state: content, hash } = cache.content(sat, names);
      if (previous?.desiredHash === hash) continue;
      const generation = (previous?.desired ?? 0) + 1;
      const record: DesiredRecord = { generation, contentHash: hash, state: { ...content, generation }, publishedAt: at };
      putDesired(db, id, record, previous);
      out.push([id, record]);
    }
    return out;
  });
  if (changed.length > 0) ctx.log.info({ satellites: changed.length, first: changed[0]?.[0] }, 'desired state changed');
  // In commit order: a later reconcile's records are published after these (its continuation
  // runs after this one's), so publishing what was just written is publishing the newest.
  for (const [id, record] of changed) {
    ctx.log.debug({ satelliteId: id, generation: record.generation }, 'desired state changed');
    publishRecord(ctx, id, record);
  }
  return changed.map(([id]) => id);
}

/**
 * Publishes the stored desired state (the newest, whoever computed it) without waiting for the
 * broker: the database is the truth and is republished when the broker lost our session.
 */
export function publishDesired(ctx: FleetContext, id: string): void {
  const record = ctx.db.desired.get(id);
  if (record) publishRecord(ctx, id, record);
}

function publishRecord(ctx: FleetContext, id: string, record: DesiredRecord): void {
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
