import type { ImageReport } from '../../protocol/index.ts';
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
    const total = d.totalBytes !== undefined ? ` of ${bytes(d.totalBytes)}` : '';
    lines.push(`disk        ${d.blobs} blobs, ${bytes(d.bytes)}${d.freeBytes !== undefined ? `; ${bytes(d.freeBytes)} free${total}` : ''}${d.condition && d.condition !== 'ok' ? ` (${d.condition.toUpperCase()})` : ''}`);
    if (state.download) {
      const dl = state.download;
      lines.push(`download    ${bytes(dl.bytesDone)} of ${bytes(dl.bytesTotal)} (${percent(dl.bytesDone, dl.bytesTotal)}), ${bytes(dl.bytesRemaining)} to go`);
    }
    if (state.process) {
      const p = state.process;
      lines.push(`process     ${p.arch}${p.board ? ` on ${p.board}` : ''}, RSS ${bytes(p.rssBytes)}, up ${duration(p.uptimeSeconds)}`);
    }
    if (state.traffic) {
      const tr = state.traffic;
      lines.push(`traffic     since start: ${bytes(tr.bytesFromUpstream)} from upstream, ${bytes(tr.bytesServed)} served to devices, peers ${bytes(tr.bytesFromPeers)} in / ${bytes(tr.bytesToPeers)} out`);
    }
    if (state.proxy) {
      const px = state.proxy;
      lines.push(`proxy       since start: ${px.hits} hits, ${px.misses} misses (${percent(px.hits, px.hits + px.misses)} hits), ${bytes(px.bytesFromUpstream)} from upstream, ${bytes(px.bytesServedFromCache)} served from cache (WAN saved)`);
    }
    lines.push(`upstream    ${state.upstream.reachable === null ? 'not tried' : state.upstream.reachable ? 'reachable' : `unreachable${state.upstream.lastError ? `: ${state.upstream.lastError}` : ''}`}`);
    if (state.lastSync) {
      lines.push(`last sync   ${state.lastSync.result} ${age(state.lastSync.finishedAt, now)}, ${bytes(state.lastSync.bytesFromUpstream)} from upstream, ${state.lastSync.errors} error(s)`);
    }
    if (state.images.length > 0) {
      lines.push('', formatTable(['IMAGE', 'STATUS', 'DIGEST', 'FAILURE'], state.images.map((i) => [`${i.repository}:${i.reference}`, imageStatus(i), i.digest?.slice(0, 19), [i.code, i.reason].filter(Boolean).join(': ')])));
    }
    if (state.strayPulls && state.strayPulls.length > 0) {
      lines.push('', 'pulled by devices, not in the desired state:');
      lines.push(formatTable(['IMAGE', 'PULLS', 'NOT FOUND'], state.strayPulls.map((p) => [`${p.repository}${p.reference.includes(':') ? '@' : ':'}${p.reference}`, p.pulls, p.notFound])));
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

function percent(part: number, whole: number): string {
  return whole > 0 ? `${Math.floor((part / whole) * 100)}%` : '-';
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** A pending image with its bytes: "pending 31% (3.1 MiB of 10 MiB)". */
function imageStatus(i: ImageReport): string {
  if (i.status !== 'pending' || i.bytesTotal === undefined) return i.status;
  return `pending ${percent(i.bytesDone ?? 0, i.bytesTotal)} (${bytes(i.bytesDone ?? 0)} of ${bytes(i.bytesTotal)})`;
}
