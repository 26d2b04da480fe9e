import { AdminClient } from '../admin/client.ts';
import type { GcReport, ImageRow, StatusReport } from '../admin/types.ts';
import { isSatelliteError } from '../lib/errors.ts';
import { ago, fields, formatBytes, formatDuration, progressText, shortDigest, table, textBar } from './format.ts';
import { syncCommand, verifyCommand } from './progress-commands.ts';

export { ADMIN_COMMANDS, ADMIN_USAGE } from './usage.ts';

export interface AdminFlags {
  json?: boolean | undefined;
  wait?: boolean | undefined;
  'dry-run'?: boolean | undefined;
  repair?: boolean | undefined;
}

/** Runs one admin command against the running satellite; resolves with the exit status. */
export async function adminCommand(command: string, socket: string, flags: AdminFlags): Promise<number> {
  const client = new AdminClient(socket);
  const out = (s: string) => process.stdout.write(`${s}\n`);
  try {
    switch (command) {
      case 'status': {
        const s = await client.status();
        out(flags.json ? JSON.stringify(s, null, 2) : renderStatus(s));
        return 0;
      }
      case 'images': {
        const images = await client.images();
        out(flags.json ? JSON.stringify(images, null, 2) : renderImages(images));
        return 0;
      }
      case 'gc': {
        const r = await client.gc(flags['dry-run'] === true);
        out(flags.json ? JSON.stringify(r, null, 2) : renderGc(r));
        return 0;
      }
      case 'sync':
        return await syncCommand(client, flags);
      case 'verify':
        return await verifyCommand(client, flags);
      default:
        throw new Error(`not an admin command: ${command}`);
    }
  } catch (err) {
    if (isSatelliteError(err)) {
      process.stderr.write(`satellite ${command}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** The watchdog's state: "ok", or "SHEDDING since …", with RSS against the soft limit. */
function memoryLine(m: StatusReport['memory']): string {
  if (!m || m.state === 'disabled') return 'no watchdog (memory.softLimitBytes 0)';
  const limits = `RSS ${formatBytes(m.rssBytes)}, soft limit ${formatBytes(m.softLimitBytes)}, resume under ${formatBytes(m.resumeBytes)}`;
  const cg = m.cgroup?.maxBytes ? `; cgroup ${formatBytes(m.cgroup.currentBytes ?? 0)} of ${formatBytes(m.cgroup.maxBytes)}` : '';
  const shed = m.shedRequests > 0 ? `; ${m.shedRequests} blob requests shed since start` : '';
  return m.state === 'shedding' ? `SHEDDING since ${m.since} (429 to new blob downloads, sync paused); ${limits}${cg}${shed}` : `ok; ${limits}${cg}${shed}`;
}

export function renderStatus(s: StatusReport): string {
  const upstream = s.upstream.url === null ? 'none (no desired state)' : `${s.upstream.url} ${s.upstream.reachable === null ? '(not tried yet)' : s.upstream.reachable ? 'reachable' : `UNREACHABLE: ${s.upstream.lastError ?? ''}`}`;
  const gen = s.generation.desired === null ? 'no desired state' : `applied ${s.generation.applied ?? '-'}${s.generation.appliedFrom === 'bundle' ? ' (from a bundle)' : ''} / desired ${s.generation.desired}${s.running ? ', syncing now' : ''}`;
  const last = s.lastRun ? `${s.lastRun.result} ${ago(s.lastRun.finishedAt)} (${formatBytes(s.lastRun.bytesFromUpstream)} from upstream, ${s.lastRun.blobsFetched} blobs, ${s.lastRun.errors.length} errors)` : 'none yet';
  const rows: Array<[string, string]> = [
    ['Satellite', `${s.version}, up ${formatDuration(s.uptimeSeconds)}, RSS ${formatBytes(s.rssBytes)}`],
    ['Upstream', upstream],
    ['Generation', gen],
    ['Last run', last],
    ['Next run', s.nextRunAt ?? '-'],
    ['Memory', memoryLine(s.memory ?? null)],
    ['Paused', s.paused ? `${s.paused.reason}${s.paused.until ? ` until ${s.paused.until}` : ''}` : 'no'],
    ['Disk', `store ${formatBytes(s.disk.storeBytes)} in ${s.disk.storeBlobs} blobs; ${formatBytes(s.disk.freeBytes)} free of ${formatBytes(s.disk.totalBytes)} (${s.disk.dataDir})`],
    ['Control', s.control ? `${s.control.connected ? 'connected' : 'DISCONNECTED'} as ${s.control.satelliteId}` : 'not configured (desired state from a file)'],
    ['Peers', s.peers ? (s.peers.members.length === 0 ? 'none known' : s.peers.members.map((m) => m.url).join(', ')) : 'not configured'],
    ['Meters', s.meters.map((m) => `${m.period} ${formatBytes(m.bytes)}${m.capBytes !== null ? `/${formatBytes(m.capBytes)}` : ''}`).join(', ') || '-'],
  ];
  const parts = [fields(rows)];
  if (s.images.length > 0) {
    parts.push(
      'Images',
      table(
        ['REPOSITORY', 'REFERENCE', 'STATE', 'DIGEST', 'LAST OK', 'FAILURE'],
        s.images.map((i) => [i.repository, i.reference, i.status, i.digest ? shortDigest(i.digest) : '-', ago(i.lastOkAt ?? null), i.status === 'failed' ? `${i.code ?? ''}: ${i.reason ?? ''}` : '']),
      ),
    );
  }
  if (s.downloads.length > 0) {
    parts.push('Downloads', table(['BLOB', 'PROGRESS', 'BYTES'], s.downloads.map((d) => [shortDigest(d.digest), textBar(d.bytes, d.size), progressText(d)])));
  }
  return parts.join('\n');
}

export function renderImages(images: ImageRow[]): string {
  if (images.length === 0) return 'no images stored';
  return table(
    ['REPOSITORY', 'TAG', 'DIGEST', 'SIZE', 'PLATFORMS', 'SOURCE', 'LAST PULLED'],
    images.map((i) => [i.repository, i.tag ?? '<none>', shortDigest(i.digest), formatBytes(i.sizeBytes), i.platforms.join(', ') || '-', i.source, ago(i.lastPulledAt)]),
  );
}

export function renderGc(r: GcReport): string {
  const lines = [
    r.dryRun
      ? `would free ${formatBytes(r.bytesFreed)} (${r.bytesFreed} bytes): ${r.blobsRemoved} blobs, ${r.manifestsRemoved} manifests`
      : `freed ${formatBytes(r.bytesFreed)} (${r.bytesFreed} bytes): ${r.blobsRemoved} blobs, ${r.manifestsRemoved} manifests`,
  ];
  if (r.keptYoung.blobs > 0) {
    lines.push(
      `kept ${r.keptYoung.blobs} unreferenced blobs (${formatBytes(r.keptYoung.bytes)}) younger than the grace period of ${formatDuration(r.keptYoung.graceSeconds)} ` +
        `(store.gcGraceSeconds: a push may still be sending its manifest); the first can go after ${r.keptYoung.oldestFreeAt}`,
    );
  }
  if (r.keptPinned.blobs > 0) lines.push(`kept ${r.keptPinned.blobs} blobs (${formatBytes(r.keptPinned.bytes)}) in use by a download or pull right now`);
  return lines.join('\n');
}
