import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';
import type { GroundControl } from '../helpers/groundcontrol.ts';
import { freePort } from '../helpers/ports.ts';
import type { Teardown } from '../helpers/cleanup.ts';
import type { StatusDoc } from '../sync/helpers.ts';
import type { PeerCounters } from '../../src/peers/stats.ts';

/** One peer's counters as the status endpoint serves them (JSON of src/peers/stats.ts). */
export type PeerCountersDoc = PeerCounters;

export interface PeersStatusDoc {
  self: string | null;
  members: Array<{ key: string; url: string }>;
  peers: PeerCountersDoc[];
  bytesServed: number;
}

export async function peersStatus(sat: Satellite): Promise<PeersStatusDoc> {
  const res = await fetch(`${sat.url}/_satellite/status`);
  const doc = (await res.json()) as StatusDoc & { peers: PeersStatusDoc | null };
  if (!doc.peers) throw new Error('status has no peers section');
  return doc.peers;
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Every committed blob file, re-hashed: its digest must be its name. Returns the sorted digests. */
export async function verifiedBlobs(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  const root = join(dataDir, 'blobs', 'sha256');
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const hex of await readdir(join(root, prefix))) {
      const actual = await hashFile(join(root, prefix, hex));
      if (actual !== `sha256:${hex}`) throw new Error(`blob file ${hex} in ${dataDir} hashes to ${actual}`);
      out.push(actual);
    }
  }
  return out.sort();
}

/** The site token the peer tests' static sites share (the peer endpoints never run without one). */
export const PEER_TEST_TOKEN = 'peer-test-token-0123456789';

/** Satellite config for peer tests: file source, quick retries, the test token, peers section merged in. */
export function peerSatelliteConfig(desiredStateFile: string, port: number, peers: Record<string, unknown>): Record<string, unknown> {
  return {
    registry: { listen: { host: '127.0.0.1', port } },
    sync: { desiredStateFile, intervalSeconds: 3600, retry: { baseMs: 50, maxMs: 500 } },
    store: { gcGraceSeconds: 0 },
    peers: { advertiseUrl: `http://127.0.0.1:${port}`, token: PEER_TEST_TOKEN, ...peers },
  };
}

/**
 * Creates a satellite at a site in Ground Control and starts it registered there, sharing blobs
 * (advertiseUrl set, no peers.token: the site secret comes from Ground Control). Stopped after the test.
 */
export async function startSiteMember(t: Teardown, gc: GroundControl, name: string, site: string, peers: Record<string, unknown> = {}): Promise<{ id: string; sat: Satellite }> {
  const created = await gc.api<{ satellite: { id: string }; registration: { token: string } }>('POST', '/api/v1/satellites', { name, site });
  assert.equal(created.status, 201);
  const port = await freePort();
  const sat = await startSatellite(t, {
    config: {
      registry: { listen: { host: '127.0.0.1', port } },
      control: { groundControlUrl: gc.url, registrationToken: created.body.registration.token, reportIntervalSeconds: 3600 },
      sync: { intervalSeconds: 3600, retry: { baseMs: 50, maxMs: 500 } },
      peers: { advertiseUrl: `http://127.0.0.1:${port}`, ...peers },
      log: { level: process.env.PEERS_LOG ?? 'info' },
    },
  });
  return { id: created.body.satellite.id, sat };
}
