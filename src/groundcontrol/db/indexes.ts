import type { Database, Key } from 'lmdb';
import type { GcDb } from './db.ts';
import { removeSeries } from './series.ts';
import type { DesiredRecord, GenerationsRecord, SatelliteRecord, StatusRecord, TokenRecord } from './records.ts';

/**
 * Ground Control's secondary indexes and fleet-wide counters. Every write of a satellite, an
 * assignment, a status or a desired state goes through the functions here, called inside the
 * write transaction that changes the record, so records and indexes commit together. Readers ask
 * by index ("satellites at site X") and never scan a whole table per item.
 */

/** Bump when an index is added or its meaning changes: the next open rebuilds them all once. */
export const INDEX_VERSION = 3;
const INDEX_VERSION_KEY = 'index-version';
const COUNTS_KEY = 'counts';

export const PRESENCE_STATES = ['online', 'offline', 'unknown'] as const;
export const SYNC_STATES = ['in-sync', 'out-of-sync'] as const;
export type PresenceState = (typeof PRESENCE_STATES)[number];
export type SyncState = (typeof SYNC_STATES)[number];
/** Satellites whose last state report has at least one failed image (no entry otherwise). */
export const FAILURE_STATES = ['failed'] as const;
export type FailureState = (typeof FAILURE_STATES)[number];
export type SatelliteState = PresenceState | SyncState | FailureState;
export const SATELLITE_STATES: readonly SatelliteState[] = [...PRESENCE_STATES, ...SYNC_STATES, ...FAILURE_STATES];

/** Fleet-wide counts, kept up to date by every write (never recomputed by a read). */
export interface FleetCounts {
  satellites: number;
  registered: number;
  online: number;
  offline: number;
  unknown: number;
  inSync: number;
  outOfSync: number;
  /** Satellites reporting at least one failed image. */
  failed: number;
}

const COUNT_OF: Record<SatelliteState, keyof FleetCounts> = {
  online: 'online',
  offline: 'offline',
  unknown: 'unknown',
  'in-sync': 'inSync',
  'out-of-sync': 'outOfSync',
  failed: 'failed',
};

type Pair = [string, string];

/** Key range of every [first, *] key; with `after`, only keys past [first, after]. */
export function under(first: string, after?: string): { start: Pair; end: Pair } {
  return { start: [first, after === undefined ? '' : `${after}\u0000`], end: [first, '\uffff'] };
}

function emptyCounts(): FleetCounts {
  return { satellites: 0, registered: 0, online: 0, offline: 0, unknown: 0, inSync: 0, outOfSync: 0, failed: 0 };
}

export function readCounts(db: GcDb): FleetCounts {
  return { ...emptyCounts(), ...(db.meta.get(COUNTS_KEY) as FleetCounts | undefined) };
}

function bump(db: GcDb, key: keyof FleetCounts, by: number): void {
  if (by === 0) return;
  const counts = readCounts(db);
  counts[key] += by;
  db.meta.put(COUNTS_KEY, counts);
}

function presenceOf(status: StatusRecord | undefined): PresenceState {
  const online = status?.presence?.online;
  return online === true ? 'online' : online === false ? 'offline' : 'unknown';
}

/**
 * in-sync: applied the newest generation published; out-of-sync: seen (presence known) and not
 * there yet; no sync state for a satellite never seen (it counts as "unknown", not as syncing).
 */
function syncOf(g: GenerationsRecord | undefined, status: StatusRecord | undefined): SyncState | undefined {
  if (isApplied(g)) return 'in-sync';
  return presenceOf(status) === 'unknown' ? undefined : 'out-of-sync';
}

function isApplied(g: GenerationsRecord | undefined): boolean {
  return g !== undefined && g.desired !== null && g.applied === g.desired;
}

function failureOf(status: StatusRecord | undefined): FailureState | undefined {
  return (status?.state?.imageCounts.failed ?? 0) > 0 ? 'failed' : undefined;
}

function peerUrlOf(status: StatusRecord | undefined): string | undefined {
  return status?.state?.peerUrl || undefined;
}

function emptyGenerations(): GenerationsRecord {
  return { desired: null, desiredHash: null, acknowledged: null, applied: null };
}

function storeGenerations(db: GcDb, id: string, g: GenerationsRecord): void {
  if (g.desired === null && g.acknowledged === null && g.applied === null) db.generations.remove(id);
  else db.generations.put(id, g);
}

/** Stores a satellite's generations (none known: no entry) and files it in-sync or out-of-sync. */
function putGenerations(db: GcDb, id: string, before: GenerationsRecord | undefined, g: GenerationsRecord): void {
  storeGenerations(db, id, g);
  // Still (not) applied: the sync state stays, whatever the presence (no status read per publish).
  if (isApplied(before) === isApplied(g)) return;
  const status = db.status.get(id);
  moveState(db, id, syncOf(before, status), syncOf(g, status));
}

/** Moves a satellite's index entry from a known state to another, and the two counters with it. */
function moveState(db: GcDb, id: string, from: SatelliteState | undefined, to: SatelliteState | undefined): void {
  if (from === to) return;
  const counts = readCounts(db);
  if (from !== undefined) {
    db.satelliteStates.remove([from, id]);
    counts[COUNT_OF[from]]--;
  }
  if (to !== undefined) {
    db.satelliteStates.put([to, id], 1);
    counts[COUNT_OF[to]]++;
  }
  db.meta.put(COUNTS_KEY, counts);
}

// ---- writes (inside a write transaction) ----

/**
 * Stores a satellite record (new or changed). Returns the sites whose blob-sharing membership
 * changed (a member with a peer URL moved between sites).
 */
export function putSatellite(db: GcDb, next: SatelliteRecord): string[] {
  const before = db.satellites.get(next.id);
  db.satellites.put(next.id, next);
  const id = next.id;
  if (!before) {
    bump(db, 'satellites', 1);
    moveState(db, id, undefined, presenceOf(db.status.get(id)));
    moveState(db, id, undefined, syncOf(db.generations.get(id), db.status.get(id)));
    moveState(db, id, undefined, failureOf(db.status.get(id)));
  }
  bump(db, 'registered', Number(next.registeredAt !== null) - Number(before !== undefined && before.registeredAt !== null));
  const oldSite = before ? before.site : null;
  if (oldSite === next.site) return [];
  const changed: string[] = [];
  if (oldSite !== null) {
    db.siteSatellites.remove([oldSite, id]);
    if (db.sitePeers.get([oldSite, id]) !== undefined) {
      db.sitePeers.remove([oldSite, id]);
      changed.push(oldSite);
    }
  }
  if (next.site !== null) {
    db.siteSatellites.put([next.site, id], 1);
    const url = peerUrlOf(db.status.get(id));
    if (url) {
      db.sitePeers.put([next.site, id], url);
      changed.push(next.site);
    }
  }
  return changed;
}

/**
 * Removes a satellite's record, its own assignments, status, desired state and every index entry.
 * Returns its site and whether it was a blob-sharing member there, or undefined if unknown.
 */
export function removeSatelliteRecords(db: GcDb, id: string): { site: string | null; wasPeer: boolean } | undefined {
  const sat = db.satellites.get(id);
  if (!sat) return undefined;
  db.satellites.remove(id);
  bump(db, 'satellites', -1);
  if (sat.registeredAt !== null) bump(db, 'registered', -1);
  let wasPeer = false;
  if (sat.site !== null) {
    db.siteSatellites.remove([sat.site, id]);
    wasPeer = db.sitePeers.get([sat.site, id]) !== undefined;
    if (wasPeer) db.sitePeers.remove([sat.site, id]);
  }
  for (const key of db.satelliteGroups.getKeys(under(id))) {
    db.satelliteAssignments.remove([key[1], id]);
    db.satelliteGroups.remove(key);
  }
  moveState(db, id, presenceOf(db.status.get(id)), undefined);
  moveState(db, id, syncOf(db.generations.get(id), db.status.get(id)), undefined);
  moveState(db, id, failureOf(db.status.get(id)), undefined);
  db.status.remove(id);
  db.desired.remove(id);
  db.generations.remove(id);
  removeSeries(db, id);
  return { site: sat.site, wasPeer };
}

/**
 * Stores a satellite's status; `before` is its stored status and `site` its site (each read here
 * when not given). Returns its site when the site's blob-sharing membership changed (its peer URL
 * appeared, changed or went), else undefined.
 */
export function putStatus(db: GcDb, id: string, next: StatusRecord, hints: { before?: StatusRecord | undefined; site?: string | null } = {}): string | undefined {
  const before = 'before' in hints ? hints.before : db.status.get(id);
  db.status.put(id, next);
  moveState(db, id, presenceOf(before), presenceOf(next));
  moveState(db, id, failureOf(before), failureOf(next));
  const acknowledged = next.state?.desiredGeneration ?? null;
  const applied = next.state?.appliedGeneration ?? null;
  const presenceChanged = presenceOf(before) !== presenceOf(next);
  if (presenceChanged || (before?.state?.desiredGeneration ?? null) !== acknowledged || (before?.state?.appliedGeneration ?? null) !== applied) {
    const g = db.generations.get(id);
    let after = g;
    if ((g?.acknowledged ?? null) !== acknowledged || (g?.applied ?? null) !== applied) {
      after = { ...(g ?? emptyGenerations()), acknowledged, applied };
      storeGenerations(db, id, after);
    }
    // A first presence moves a never-seen satellite into out-of-sync (or in-sync).
    moveState(db, id, syncOf(g, before), syncOf(after, next));
  }
  const url = peerUrlOf(next);
  if (url === peerUrlOf(before)) return undefined;
  const site = hints.site !== undefined ? hints.site : (db.satellites.get(id)?.site ?? null);
  if (site === null) return undefined;
  if (url) db.sitePeers.put([site, id], url);
  else db.sitePeers.remove([site, id]);
  return site;
}

/** Stores the desired state published to a satellite; `previous` is its generations record. */
export function putDesired(db: GcDb, id: string, record: DesiredRecord, previous: GenerationsRecord | undefined = db.generations.get(id)): void {
  db.desired.put(id, record);
  putGenerations(db, id, previous, { ...(previous ?? emptyGenerations()), desired: record.generation, desiredHash: record.contentHash });
}

export function putSatelliteAssignment(db: GcDb, group: string, satelliteId: string, at: string): void {
  db.satelliteAssignments.put([group, satelliteId], at);
  db.satelliteGroups.put([satelliteId, group], 1);
}

export function removeSatelliteAssignment(db: GcDb, group: string, satelliteId: string): void {
  db.satelliteAssignments.remove([group, satelliteId]);
  db.satelliteGroups.remove([satelliteId, group]);
}

export function putSiteAssignment(db: GcDb, group: string, site: string, at: string): void {
  db.siteAssignments.put([group, site], at);
  db.siteGroups.put([site, group], 1);
}

export function removeSiteAssignment(db: GcDb, group: string, site: string): void {
  db.siteAssignments.remove([group, site]);
  db.siteGroups.remove([site, group]);
}

/** Stores a registration token (new, or marked used). */
export function putToken(db: GcDb, hash: string, record: TokenRecord): void {
  db.tokens.put(hash, record);
  if (record.satelliteId !== null) db.satelliteTokens.put([record.satelliteId, hash], 1);
}

export function removeToken(db: GcDb, hash: string): void {
  const record = db.tokens.get(hash);
  if (!record) return;
  db.tokens.remove(hash);
  if (record.satelliteId !== null) db.satelliteTokens.remove([record.satelliteId, hash]);
}

// ---- reads ----

/** The registration tokens issued for a satellite: [hash, record]. */
export function tokensOf(db: GcDb, satelliteId: string): Array<[string, TokenRecord]> {
  const out: Array<[string, TokenRecord]> = [];
  for (const k of db.satelliteTokens.getKeys(under(satelliteId))) {
    const record = db.tokens.get(k[1]);
    if (record) out.push([k[1], record]);
  }
  return out;
}

export function satellitesAtSite(db: GcDb, site: string): string[] {
  return [...db.siteSatellites.getKeys(under(site))].map((k) => k[1]);
}

/** Names of the groups a satellite gets: assigned to it directly or to its site; sorted. */
export function groupNamesOf(db: GcDb, sat: Pick<SatelliteRecord, 'id' | 'site'>): string[] {
  const names = new Set<string>();
  for (const k of db.satelliteGroups.getKeys(under(sat.id))) names.add(k[1]);
  if (sat.site !== null) for (const g of groupsOfSite(db, sat.site)) names.add(g);
  return [...names].sort();
}

export function groupsOfSite(db: GcDb, site: string): string[] {
  return [...db.siteGroups.getKeys(under(site))].map((k) => k[1]);
}

/** Ids of the satellites that get a group, directly or through their site. */
export function satellitesOfGroup(db: GcDb, group: string): string[] {
  const ids = new Set<string>();
  for (const k of db.satelliteAssignments.getKeys(under(group))) ids.add(k[1]);
  for (const k of db.siteAssignments.getKeys(under(group))) for (const id of satellitesAtSite(db, k[1])) ids.add(id);
  return [...ids];
}

/** A site's blob-sharing members (satellites that reported a peer URL), by id. */
export function sitePeerMembers(db: GcDb, site: string): Array<{ id: string; url: string }> {
  return [...db.sitePeers.getRange(under(site))].map(({ key, value }) => ({ id: key[1], url: value }));
}

/** Up to `limit` satellite ids in a state, in id order, after the id `after`. */
export function satellitesInState(db: GcDb, state: SatelliteState, limit: number, after?: string): string[] {
  return [...db.satelliteStates.getKeys({ ...under(state, after), limit })].map((k) => k[1]);
}

export function isInState(db: GcDb, id: string, state: SatelliteState): boolean {
  return db.satelliteStates.doesExist([state, id]);
}

// ---- building and checking (migration, tests) ----

interface IndexContents {
  siteSatellites: Map<string, unknown>;
  satelliteGroups: Map<string, unknown>;
  siteGroups: Map<string, unknown>;
  sitePeers: Map<string, unknown>;
  generations: Map<string, unknown>;
  satelliteStates: Map<string, unknown>;
  satelliteTokens: Map<string, unknown>;
  counts: FleetCounts;
}

type IndexName = Exclude<keyof IndexContents, 'counts'>;
const INDEX_NAMES: IndexName[] = ['siteSatellites', 'satelliteGroups', 'siteGroups', 'sitePeers', 'generations', 'satelliteStates', 'satelliteTokens'];

const keyText = (key: unknown) => JSON.stringify(key);

/** What every index should hold, computed from the records alone (one pass over each table). */
function expectedIndexes(db: GcDb): IndexContents {
  const out: IndexContents = {
    siteSatellites: new Map(),
    satelliteGroups: new Map(),
    siteGroups: new Map(),
    sitePeers: new Map(),
    generations: new Map(),
    satelliteStates: new Map(),
    satelliteTokens: new Map(),
    counts: emptyCounts(),
  };
  for (const { key, value: sat } of db.satellites.getRange({})) {
    const status = db.status.get(key);
    const desired = db.desired.get(key);
    out.counts.satellites++;
    if (sat.registeredAt !== null) out.counts.registered++;
    if (sat.site !== null) {
      out.siteSatellites.set(keyText([sat.site, key]), 1);
      const url = peerUrlOf(status);
      if (url) out.sitePeers.set(keyText([sat.site, key]), url);
    }
    const g: GenerationsRecord = {
      desired: desired?.generation ?? null,
      desiredHash: desired?.contentHash ?? null,
      acknowledged: status?.state?.desiredGeneration ?? null,
      applied: status?.state?.appliedGeneration ?? null,
    };
    if (desired || status?.state) out.generations.set(keyText(key), g);
    for (const state of [presenceOf(status), syncOf(g, status), failureOf(status)]) {
      if (state === undefined) continue;
      out.satelliteStates.set(keyText([state, key]), 1);
      out.counts[COUNT_OF[state]]++;
    }
  }
  for (const { key } of db.satelliteAssignments.getRange({})) out.satelliteGroups.set(keyText([key[1], key[0]]), 1);
  for (const { key } of db.siteAssignments.getRange({})) out.siteGroups.set(keyText([key[1], key[0]]), 1);
  for (const { key, value } of db.tokens.getRange({})) if (value.satelliteId !== null) out.satelliteTokens.set(keyText([value.satelliteId, key]), 1);
  return out;
}

function actualIndexes(db: GcDb): IndexContents {
  const read = (d: Database<unknown, Key>) => new Map([...d.getRange({})].map(({ key, value }) => [keyText(key), value]));
  return {
    siteSatellites: read(db.siteSatellites),
    satelliteGroups: read(db.satelliteGroups),
    siteGroups: read(db.siteGroups),
    sitePeers: read(db.sitePeers),
    generations: read(db.generations),
    satelliteStates: read(db.satelliteStates),
    satelliteTokens: read(db.satelliteTokens),
    counts: readCounts(db),
  };
}

/**
 * Compares every index and counter with what the records say; returns the differences (empty
 * when consistent). For tests and diagnosis: it reads whole tables.
 */
export function verifyIndexes(db: GcDb): string[] {
  const want = expectedIndexes(db);
  const have = actualIndexes(db);
  const problems: string[] = [];
  for (const name of INDEX_NAMES) {
    for (const [k, v] of want[name]) if (keyText(have[name].get(k)) !== keyText(v)) problems.push(`${name} ${k}: want ${keyText(v)}, have ${keyText(have[name].get(k))}`);
    for (const k of have[name].keys()) if (!want[name].has(k)) problems.push(`${name} ${k}: stale entry`);
  }
  if (keyText(want.counts) !== keyText(have.counts)) problems.push(`counts: want ${keyText(want.counts)}, have ${keyText(have.counts)}`);
  return problems;
}

/** Rebuilds every index and counter from the records, in one transaction. */
export function rebuildIndexes(db: GcDb): void {
  db.root.transactionSync(() => {
    for (const name of INDEX_NAMES) {
      const index = db[name] as Database<unknown, Key>;
      for (const key of index.getKeys({})) index.remove(key);
    }
    const want = expectedIndexes(db);
    for (const name of INDEX_NAMES) {
      const index = db[name] as Database<unknown, Key>;
      for (const [k, v] of want[name]) index.put(JSON.parse(k), v);
    }
    db.meta.put(COUNTS_KEY, want.counts);
    db.meta.put(INDEX_VERSION_KEY, INDEX_VERSION);
  });
}

/**
 * At open: a database written before these indexes existed (or by an older index version) gets
 * them built once from its records. Returns true when it did.
 */
export function ensureIndexes(db: GcDb): boolean {
  if (db.meta.get(INDEX_VERSION_KEY) === INDEX_VERSION) return false;
  rebuildIndexes(db);
  return true;
}
