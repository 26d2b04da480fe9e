import { writeFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Satellite } from '../helpers/satellite.ts';
import type { SyncStatus } from '../../src/sync/index.ts';

export interface StatusDoc {
  version: string;
  store: { blobs: number; bytes: number };
  sync: SyncStatus;
}

export async function getStatus(sat: Satellite): Promise<StatusDoc> {
  const res = await fetch(`${sat.url}/_satellite/status`);
  if (res.status !== 200) throw new Error(`status answered ${res.status}`);
  return (await res.json()) as StatusDoc;
}

/** Polls the satellite's status until `ok` holds; fails with the last status seen. */
export async function waitForStatus(sat: Satellite, ok: (s: StatusDoc) => boolean, timeoutMs = 60_000): Promise<StatusDoc> {
  const deadline = Date.now() + timeoutMs;
  let last: StatusDoc | undefined;
  while (Date.now() < deadline) {
    last = await getStatus(sat);
    if (ok(last)) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for sync status; last: ${JSON.stringify(last?.sync, null, 1)}\n${sat.logs().split('\n').slice(-30).join('\n')}`);
}

/** Waits until the given generation is applied and no run is in progress. */
export function waitForGeneration(sat: Satellite, generation: number, timeoutMs?: number): Promise<StatusDoc> {
  return waitForStatus(sat, (s) => s.sync.appliedGeneration === generation && !s.sync.running && s.sync.lastRun?.generation === generation, timeoutMs);
}

/** Writes the desired state the way a careful writer does: temp file, then rename. */
export async function writeDesired(file: string, doc: object): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify(doc, null, 2));
  await rename(`${file}.tmp`, file);
}

export function blobFile(dataDir: string, digest: string): string {
  const hex = digest.slice(7);
  return join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Satellite config for sync tests: file source, no periodic runs, GC without grace. */
export function syncConfig(desiredStateFile: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sync: { desiredStateFile, intervalSeconds: 3600, retry: { baseMs: 50, maxMs: 500 }, ...extra },
    store: { gcGraceSeconds: 0 },
  };
}
