import type { DiskReport } from '../../protocol/index.ts';
import type { ErrorNote } from '../db/records.ts';
import type { FleetContext } from './context.ts';
import { REJECTED_KEY, emptyStatus, type RejectedSummary } from './reports.ts';

export interface SatelliteStatus {
  id: string;
  name: string;
  site: string | null;
  registered: boolean;
  /** null until the satellite said anything */
  online: boolean | null;
  /** When the last presence message arrived. */
  presenceAt: string | null;
  lastSeenAt: string | null;
  /** Newest generation published to it. */
  desiredGeneration: number | null;
  /** Newest generation it received (state.desiredGeneration). */
  acknowledgedGeneration: number | null;
  /** Newest generation it fully applied. */
  appliedGeneration: number | null;
  /** true when it applied the newest generation published */
  inSync: boolean;
  state: { seq: number; at: string; version: string; images: { ok: number; pending: number; failed: number }; disk: DiskReport; lastSync: unknown; upstream: unknown } | null;
  errors: { count: number; last: ErrorNote | null };
  events: { count: number; last: { at: string; level: string; code: string; message: string } | null };
}

export interface FleetStatus {
  at: string;
  broker: { connected: boolean; url: string };
  counts: { satellites: number; online: number; offline: number; unknown: number; inSync: number };
  /** Messages rejected fleet-wide (also those naming no known satellite). */
  rejected: RejectedSummary;
  satellites: SatelliteStatus[];
}

/** The fleet as Ground Control knows it: one row per satellite plus the rejected-message tally. */
export function fleetStatus(ctx: FleetContext, filter: { site?: string | undefined } = {}): FleetStatus {
  const rows: SatelliteStatus[] = [];
  for (const { value: sat } of ctx.db.satellites.getRange({})) {
    if (filter.site !== undefined && sat.site !== filter.site) continue;
    const s = ctx.db.status.get(sat.id) ?? emptyStatus();
    const desired = ctx.db.desired.get(sat.id);
    const applied = s.state?.appliedGeneration ?? null;
    rows.push({
      id: sat.id,
      name: sat.name,
      site: sat.site,
      registered: sat.registeredAt !== null,
      online: s.presence?.online ?? null,
      presenceAt: s.presence?.receivedAt ?? null,
      lastSeenAt: s.lastSeenAt,
      desiredGeneration: desired?.generation ?? null,
      acknowledgedGeneration: s.state?.desiredGeneration ?? null,
      appliedGeneration: applied,
      inSync: desired !== undefined && applied === desired.generation,
      state: s.state
        ? { seq: s.state.seq, at: s.state.at, version: s.state.version, images: s.state.imageCounts, disk: s.state.disk, lastSync: s.state.lastSync, upstream: s.state.upstream }
        : null,
      errors: s.errors,
      events: { count: s.events.count, last: s.events.last.at(-1) ?? null },
    });
  }
  rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1));
  const online = rows.filter((r) => r.online === true).length;
  const offline = rows.filter((r) => r.online === false).length;
  return {
    at: ctx.now().toISOString(),
    broker: { connected: ctx.publisher.connected, url: ctx.publicMqttUrl },
    counts: { satellites: rows.length, online, offline, unknown: rows.length - online - offline, inSync: rows.filter((r) => r.inSync).length },
    rejected: (ctx.db.meta.get(REJECTED_KEY) as RejectedSummary | undefined) ?? { count: 0, last: null },
    satellites: rows,
  };
}
