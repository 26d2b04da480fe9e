#!/usr/bin/env node
// What one durable LMDB write costs Ground Control on this disk: `transaction()` then `flushed`
// (src/groundcontrol/db/db.ts durable()), one at a time as the broker link ingests reports, against
// the same writes with several in flight (lmdb-js commits concurrent transactions together).
// `node bench/fleet/lmdb-commit.ts [N] [IN_FLIGHT]`; a temp dir under os.tmpdir(), removed after.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { StatusRecord } from '../../src/groundcontrol/db/records.ts';

const n = Number(process.argv[2] ?? 2000);
const inFlight = Number(process.argv[3] ?? 20);
const dir = await mkdtemp(join(tmpdir(), 'hs-bench-lmdb-'));
try {
  // Ground Control's own options (openGcDb) and a status record of the shape a state report writes.
  const root = open({ path: dir, compression: false, maxDbs: 32 });
  const status = root.openDB<StatusRecord, string>({ name: 'status' });
  const now = new Date().toISOString();
  const record = (seq: number): StatusRecord => ({
    presence: { online: true, at: now, receivedAt: now },
    state: {
      seq, at: now, version: 'bench', desiredGeneration: seq, appliedGeneration: seq, images: [],
      imageCounts: { ok: 0, pending: 0, failed: 0 }, disk: { blobs: 0, bytes: 0 }, lastSync: null,
      upstream: { reachable: null, lastError: null },
    },
    lastSeenAt: now,
    events: { count: 0, last: [] },
    errors: { count: 0, last: null },
  });
  for (const concurrency of [1, inFlight]) {
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const i = next++;
          await root.transaction(() => status.put(`satellite-${i % 5000}`, record(i)));
          await root.flushed;
        }
      }),
    );
    const ms = performance.now() - start;
    console.log(`${n} durable writes, ${String(concurrency).padStart(2)} in flight: ${ms.toFixed(0)} ms, ${(ms / n).toFixed(3)} ms each, ${Math.round((n / ms) * 1000)}/s`);
  }
  await root.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
