import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { open } from 'lmdb';
import { pino } from 'pino';
import { CONTROL_DBS, Store, SYNC_DBS } from '../../src/store/index.ts';
import { SyncRecords } from '../../src/sync/records.ts';
import type { DesiredState } from '../../src/sync/index.ts';

const SRC = join(import.meta.dirname, '../../src');

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (/\.(ts|mts|js|mjs)$/.test(entry.name)) out.push(path);
  }
  return out;
}

test('the store owns LMDB: no satellite module outside src/store imports lmdb or opens raw sub-databases', async () => {
  const files = await sourceFiles(SRC);
  assert.ok(files.length > 100, `found the sources (${files.length} files)`);
  const offenders: string[] = [];
  for (const file of files) {
    const rel = relative(SRC, file);
    // Ground Control is another program with its own database room (groundcontrol/db/).
    if (rel.startsWith('store/') || rel.startsWith('groundcontrol/db/')) continue;
    const text = await readFile(file, 'utf8');
    if (/from\s+['"]lmdb['"]|import\(\s*['"]lmdb['"]\s*\)|require\(\s*['"]lmdb['"]\s*\)/.test(text)) offenders.push(`${rel}: imports lmdb`);
    if (/\bmetaDb\b|\bmetaTransaction\b|\.openDB\s*[<(]/.test(text)) offenders.push(`${rel}: opens a raw sub-database`);
  }
  assert.deepEqual(offenders, [], 'use a typed sub-store of src/store (controlState, syncState, cacheIndex, pulls)');
});

test('sub-database names are the on-disk names earlier versions wrote', () => {
  assert.deepEqual(CONTROL_DBS, { outbox: 'meta:control-outbox', counters: 'meta:control-meta', commands: 'meta:control-commands' });
  assert.deepEqual(SYNC_DBS, { state: 'meta:sync-state', images: 'meta:sync-images', refs: 'meta:sync-refs', meter: 'meta:sync-meter' });
});

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const desired = { generation: 7, upstream: { url: 'http://127.0.0.1:5000' }, images: [{ repository: 'apps/a', tags: ['v1'] }] } as DesiredState;

test('a data dir written through the old metaDb layout opens unchanged, and new writes read back the old way', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'hs-owns-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const indexDir = join(dataDir, 'index');

  // What the code before the sub-stores wrote: store.metaDb(name) was root.openDB({ name: `meta:${name}` }).
  {
    const env = open({ path: indexDir, compression: false, maxDbs: 64 });
    const db = <V, K extends import('lmdb').Key = string>(name: string) => env.openDB<V, K>({ name: `meta:${name}` });
    await env.transaction(() => {
      void db<unknown, number>('control-outbox').put(3, { kind: 'state', topic: 'sat/s1/state', payload: '{"seq":4}', retain: true, at: 1000 });
      void db<unknown, number>('control-outbox').put(4, { kind: 'event', topic: 'sat/s1/events', payload: '{}', retain: false, at: 1001 });
      void db<number>('control-meta').put('stateSeq', 4);
      void db<number>('control-meta').put('outboxDropped', 2);
      void db<unknown>('control-commands').put('c-1', { name: 'gc', status: 'done', receivedAt: 5, finishedAt: 6, ok: true, result: { freed: 1 } });
      void db<unknown>('sync-state').put('desired', desired);
      void db<unknown>('sync-state').put('applied', { generation: 6, at: '2026-12-01T00:00:00.000Z' });
      void db<unknown>('sync-state').put('lastRun', { generation: 6, result: 'ok' });
      void db<unknown>('sync-images').put('apps/a:v1', { repository: 'apps/a', reference: 'v1', status: 'ok', digest: D1, updatedAt: 'x' });
      void db<unknown, [string, string]>('sync-refs').put(['apps/a', 'v1'], { digests: [D1] });
      void db<number, [string, string]>('sync-meter').put(['day', '2026-12-01'], 12345);
    });
    await env.close();
  }

  const log = pino({ level: 'silent' });
  let store = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  const control = store.controlState;
  assert.deepEqual(control.outboxKeys(), [{ key: 3, kind: 'state' }, { key: 4, kind: 'event' }]);
  assert.deepEqual(control.outboxItem(3), { kind: 'state', topic: 'sat/s1/state', payload: '{"seq":4}', retain: true, at: 1000 });
  assert.equal(control.counter('stateSeq'), 4);
  assert.equal(control.counter('outboxDropped'), 2);
  assert.deepEqual(control.commands(), [{ id: 'c-1', record: { name: 'gc', status: 'done', receivedAt: 5, finishedAt: 6, ok: true, result: { freed: 1 } } }]);
  const records = new SyncRecords(store);
  assert.deepEqual(records.desired(), desired);
  assert.deepEqual(store.syncState().desired(), desired, 'what bundle import reads');
  // An applied generation recorded before bundles existed came from a sync.
  assert.deepEqual(records.applied(), { generation: 6, at: '2026-12-01T00:00:00.000Z', source: 'sync' });
  assert.deepEqual(records.lastRun(), { generation: 6, result: 'ok' });
  assert.equal(records.image('apps/a:v1')?.digest, D1);
  assert.deepEqual(records.held({ repository: 'apps/a', reference: 'v1' }), [D1]);
  assert.equal(store.syncState().metered('day', '2026-12-01'), 12345);

  // New writes through the sub-stores.
  await control.transaction(() => {
    control.putOutboxItem(5, { kind: 'result', topic: 'sat/s1/results', payload: '{"ok":true}', retain: false, at: 2000 });
    control.setCounter('stateSeq', 5);
    control.putCommand('c-2', { name: 'report', status: 'running', receivedAt: 9 });
  });
  await control.removeOutboxItem(3);
  await records.setApplied(7, '2026-12-02T00:00:00.000Z');
  await records.recordHeld({ repository: 'apps/a', reference: 'v1' }, [D2]);
  await records.keepImages(new Set());
  await store.syncState().addMetered([['day', '2026-12-01', 5], ['hour', '2026-12-01T04', 5]]);
  await store.close();

  // Read back the way the old code did.
  {
    const env = open({ path: indexDir, compression: false, maxDbs: 64 });
    const db = <V, K extends import('lmdb').Key = string>(name: string) => env.openDB<V, K>({ name: `meta:${name}` });
    assert.deepEqual([...db<{ kind: string }, number>('control-outbox').getKeys()], [4, 5]);
    assert.deepEqual(db<unknown, number>('control-outbox').get(5), { kind: 'result', topic: 'sat/s1/results', payload: '{"ok":true}', retain: false, at: 2000 });
    assert.equal(db<number>('control-meta').get('stateSeq'), 5);
    assert.deepEqual(db<unknown>('control-commands').get('c-2'), { name: 'report', status: 'running', receivedAt: 9 });
    assert.deepEqual(db<unknown>('sync-state').get('applied'), { generation: 7, at: '2026-12-02T00:00:00.000Z', source: 'sync' });
    assert.deepEqual(db<unknown>('sync-state').get('desired'), desired);
    assert.deepEqual([...db<unknown>('sync-images').getKeys()], [], 'images not kept are removed');
    assert.deepEqual(db<unknown, [string, string]>('sync-refs').get(['apps/a', 'v1']), { digests: [D2] });
    assert.equal(db<number, [string, string]>('sync-meter').get(['day', '2026-12-01']), 12350);
    assert.equal(db<number, [string, string]>('sync-meter').get(['hour', '2026-12-01T04']), 5);
    await env.close();
  }

  // And the store opens the result again.
  store = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  t.after(() => store.close());
  assert.deepEqual(new SyncRecords(store).held({ repository: 'apps/a', reference: 'v1' }), [D2]);
  assert.deepEqual(store.controlState.outboxKeys().map((e) => e.key), [4, 5]);
});
