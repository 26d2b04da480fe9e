import { open, type Database, type RootDatabase } from 'lmdb';
import { LMDB_PRIVATE_OPTIONS } from '../../lib/private-files.ts';
import { ensureIndexes } from './indexes.ts';
import type { AdminTokenRecord, CommandRecord, DesiredRecord, EventRecord, GenerationsRecord, GroupRecord, SatelliteRecord, StatusRecord, TokenRecord, WebhookCursorRecord } from './records.ts';

/** Ground Control's LMDB environment (in its own data dir) and its named databases. */
export interface GcDb {
  root: RootDatabase;
  satellites: Database<SatelliteRecord, string>;
  groups: Database<GroupRecord, string>;
  /** [group, satelliteId] -> assignedAt */
  satelliteAssignments: Database<string, [string, string]>;
  /** [group, site] -> assignedAt */
  siteAssignments: Database<string, [string, string]>;
  /** sha256(token) -> record */
  tokens: Database<TokenRecord, string>;
  /** sha256(admin token) -> record */
  adminTokens: Database<AdminTokenRecord, string>;
  /** satelliteId -> last published desired state (kept after delete: generations never go back) */
  desired: Database<DesiredRecord, string>;
  status: Database<StatusRecord, string>;
  /** [satelliteId, commandId] -> command */
  commands: Database<CommandRecord, [string, string]>;
  /** seq -> event and audit log line, bounded (fleet/events.ts) */
  events: Database<EventRecord, number>;
  /** webhook id (sha256 of its URL, 16 hex) -> its place in the event log (webhooks/queue.ts) */
  webhookCursors: Database<WebhookCursorRecord, string>;
  /** fleet-wide counters and notes (rejected messages that name no known satellite) */
  meta: Database<unknown, string>;
  /** The embedded broker's sessions and retained messages (broker/persistence.ts). */
  mqttRetained: Database<StoredPacket, string>;
  mqttSubscriptions: Database<StoredSubscription, [string, string]>;
  mqttOutgoing: Database<StoredPacket, [string, number]>;
  /**
   * Secondary indexes (db/indexes.ts), written only by that module, in the same transactions as
   * the records they index; built once at open for a database that predates them.
   */
  /** [site, satelliteId] -> 1 */
  siteSatellites: Database<1, [string, string]>;
  /** [satelliteId, group] -> 1: groups assigned to the satellite itself */
  satelliteGroups: Database<1, [string, string]>;
  /** [site, group] -> 1: groups assigned to the site */
  siteGroups: Database<1, [string, string]>;
  /** [site, satelliteId] -> peer URL: the site's blob-sharing members */
  sitePeers: Database<string, [string, string]>;
  /** satelliteId -> generations published, applied and the content hash (small: no documents) */
  generations: Database<GenerationsRecord, string>;
  /** [state, satelliteId] -> 1, state = online | offline | unknown | in-sync | out-of-sync */
  satelliteStates: Database<1, [string, string]>;
  /** [satelliteId, sha256(token)] -> 1: the registration tokens issued for a satellite */
  satelliteTokens: Database<1, [string, string]>;
  /** Traffic time series (db/series.ts): [satelliteId, hourStart] -> five-minute buckets, then hourly totals. */
  series5m: Database<number[], [string, number]>;
  seriesHourly: Database<number[], [string, number]>;
}

/** An MQTT packet as stored: payload kept as bytes. */
export interface StoredPacket {
  cmd: 'publish';
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  brokerId: string;
  brokerCounter: number;
}

export interface StoredSubscription {
  qos: 0 | 1 | 2;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
}

export function openGcDb(path: string): GcDb {
  const root = open({ path, compression: false, maxDbs: 32, ...LMDB_PRIVATE_OPTIONS });
  const db: GcDb = {
    root,
    satellites: root.openDB({ name: 'satellites' }),
    groups: root.openDB({ name: 'groups' }),
    satelliteAssignments: root.openDB({ name: 'satellite-assignments' }),
    siteAssignments: root.openDB({ name: 'site-assignments' }),
    tokens: root.openDB({ name: 'tokens' }),
    adminTokens: root.openDB({ name: 'admin-tokens' }),
    desired: root.openDB({ name: 'desired' }),
    status: root.openDB({ name: 'status' }),
    commands: root.openDB({ name: 'commands' }),
    meta: root.openDB({ name: 'meta' }),
    events: root.openDB({ name: 'events' }),
    webhookCursors: root.openDB({ name: 'webhook-cursors' }),
    mqttRetained: root.openDB({ name: 'mqtt-retained' }),
    mqttSubscriptions: root.openDB({ name: 'mqtt-subscriptions' }),
    mqttOutgoing: root.openDB({ name: 'mqtt-outgoing' }),
    siteSatellites: root.openDB({ name: 'idx-site-satellites' }),
    satelliteGroups: root.openDB({ name: 'idx-satellite-groups' }),
    siteGroups: root.openDB({ name: 'idx-site-groups' }),
    sitePeers: root.openDB({ name: 'idx-site-peers' }),
    generations: root.openDB({ name: 'idx-generations' }),
    satelliteStates: root.openDB({ name: 'idx-satellite-states' }),
    satelliteTokens: root.openDB({ name: 'idx-satellite-tokens' }),
    series5m: root.openDB({ name: 'series-5m' }),
    seriesHourly: root.openDB({ name: 'series-hourly' }),
  };
  ensureIndexes(db);
  return db;
}

export { under } from './indexes.ts';

/**
 * A write transaction that resolves once flushed to disk: an API answer or an MQTT
 * acknowledgement waits for it, so a power cut cannot undo what was confirmed.
 */
export async function durable<T>(db: GcDb, fn: () => T): Promise<T> {
  const result = await db.root.transaction(fn);
  await db.root.flushed;
  return result;
}
