import type { DesiredRecord, StatusRecord, TokenRecord } from '../db/records.ts';
import type { SatelliteView } from '../fleet/satellites.ts';
import { formatBytes as bytes } from '../../lib/format-bytes.ts';
import { age, formatTable } from './table.ts';

/** GET /api/v1/satellites/:id's satellite. */
export type SatelliteShow = SatelliteView & { desired: DesiredRecord | null; status: StatusRecord | null; tokens: TokenRecord[] };

/** `groundcontrol satellite show ID` without --json: a summary, the images and recent events. */
export function satelliteText(s: SatelliteShow, now = Date.now()): string {
  const st = s.status;
  const state = st?.state ?? null;
  const presence = st?.presence ? `${st.presence.online ? 'online' : 'offline'} since ${age(st.presence.receivedAt, now)}` : 'never seen';
  const lines = [
    `satellite   ${s.id} (${s.name})`,
    `site        ${s.site ?? '-'}`,
    `groups      ${s.groups.length > 0 ? s.groups.join(', ') : '-'}`,
    `registered  ${s.registeredAt ? `${s.registeredAt} (${age(s.registeredAt, now)})` : 'no'}`,
    `host        ${s.hostname ?? '-'}   version ${state?.version ?? s.version ?? '-'}`,
    `presence    ${presence}; last seen ${age(st?.lastSeenAt, now)}`,
    `generation  desired ${s.desired?.generation ?? '-'}, received ${state?.desiredGeneration ?? '-'}, applied ${state?.appliedGeneration ?? '-'}`,
  ];
  if (state) {
    const c = state.imageCounts;
    lines.push(`images      ${c.ok} ok, ${c.pending} pending, ${c.failed} failed`);
    const d = state.disk;
    lines.push(`disk        ${d.blobs} blobs, ${bytes(d.bytes)}${d.freeBytes !== undefined ? `; ${bytes(d.freeBytes)} free` : ''}${d.condition && d.condition !== 'ok' ? ` (${d.condition.toUpperCase()})` : ''}`);
    lines.push(`upstream    ${state.upstream.reachable === null ? 'not tried' : state.upstream.reachable ? 'reachable' : `unreachable${state.upstream.lastError ? `: ${state.upstream.lastError}` : ''}`}`);
    if (state.lastSync) {
      lines.push(`last sync   ${state.lastSync.result} ${age(state.lastSync.finishedAt, now)}, ${bytes(state.lastSync.bytesFromUpstream)} from upstream, ${state.lastSync.errors} error(s)`);
    }
    if (state.images.length > 0) {
      lines.push('', formatTable(['IMAGE', 'STATUS', 'DIGEST', 'FAILURE'], state.images.map((i) => [`${i.repository}:${i.reference}`, i.status, i.digest?.slice(0, 19), [i.code, i.reason].filter(Boolean).join(': ')])));
    }
  } else {
    lines.push('images      no state report yet');
  }
  if (st && st.errors.count > 0) lines.push('', `rejected messages: ${st.errors.count}, last ${st.errors.last?.code}: ${st.errors.last?.message}`);
  const events = st?.events.last ?? [];
  if (events.length > 0) {
    lines.push('', formatTable(['WHEN', 'LEVEL', 'CODE', 'EVENT'], events.slice(-10).reverse().map((e) => [age(e.at, now), e.level, e.code, e.message])));
  }
  const tokens = s.tokens.filter((t) => t.usedAt === null);
  if (tokens.length > 0) lines.push('', `unused registration tokens: ${tokens.map((t) => `${t.id} (expires ${t.expiresAt})`).join(', ')}`);
  return lines.join('\n');
}
