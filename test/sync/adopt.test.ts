import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { pino } from 'pino';
import { Store } from '../../src/store/index.ts';
import { bundleApplier, SyncRecords, type DesiredState, type ImportedImage } from '../../src/sync/index.ts';
import { makeTempDir } from '../helpers/tmp.ts';

const log = pino({ level: 'silent' });
const D = (n: number) => `sha256:${String(n).repeat(64)}`;
const pem = () => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;

test('bundle applier: newer desired states go in force (password, site secret and bundleKeys kept), applied only when whole, never backwards', async (t) => {
  const dataDir = await makeTempDir(t, 'hs-adopt-');
  const store = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  t.after(async () => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const records = new SyncRecords(store);
  const applier = bundleApplier({ records, store, current: () => records.desired(), setDesired: (s) => records.setDesired(s) });
  const gcKey = pem();
  const held: DesiredState = {
    generation: 3,
    upstream: { url: 'https://up.example', username: 'robot', password: 'secret' },
    images: [{ repository: 'apps/a', tags: ['1'] }],
    site: { name: 'dock', members: [], secret: 's'.repeat(40) },
    bundleKeys: [gcKey],
  };
  await records.setDesired(held);
  await records.setApplied(3, new Date().toISOString());
  const bundle = (generation: number): DesiredState => ({
    generation,
    upstream: { url: 'https://up.example', username: 'robot' },
    images: [{ repository: 'apps/a', tags: ['1', '2'] }],
    site: { name: 'dock', members: [] },
    bundleKeys: [pem()],
    trust: [{ name: 'edge', mode: 'enforce', keys: [pem()] }],
  });
  const img = (reference: string, status: ImportedImage['status'], n: number): ImportedImage =>
    status === 'imported' ? { repository: 'apps/a', reference, digest: D(n), status } : { repository: 'apps/a', reference, digest: D(n), status, code: 'SIGNATURE_REQUIRED', reason: 'unsigned' };

  // The bundle's trust policy checks its images when it will be in force; an older one's does not.
  assert.equal(applier.policies(bundle(4))?.[0]?.name, 'edge');
  assert.equal(applier.policies(bundle(2)), undefined);

  // Newer, one image refused: in force, not applied; what the stick lacks is kept, its key is not taken.
  const partial = await applier.apply(bundle(4), [img('1', 'imported', 1), img('2', 'refused', 2)]);
  assert.equal(partial.status, 'adopted');
  assert.match(partial.reason ?? '', /1 of 2 references not imported \(apps\/a:2\)/);
  const now = records.desired()!;
  assert.equal(now.generation, 4);
  assert.equal(now.upstream.password, 'secret');
  assert.equal(now.site?.secret, held.site!.secret);
  assert.deepEqual(now.bundleKeys, [gcKey], 'trust material for bundles never comes from a bundle');
  assert.deepEqual([records.applied()?.generation, records.applied()?.source], [3, 'sync']);
  assert.deepEqual([records.image('apps/a:1')?.status, records.image('apps/a:1')?.digest], ['ok', D(1)]);
  assert.deepEqual([records.image('apps/a:2')?.status, records.image('apps/a:2')?.code], ['failed', 'SIGNATURE_REQUIRED']);
  assert.deepEqual(records.held({ repository: 'apps/a', reference: '1' }), [D(1)]);

  // The same generation, whole: applied from the bundle (the desired state in force stays as it is).
  assert.deepEqual(await applier.apply(bundle(4), [img('1', 'imported', 1), img('2', 'imported', 2)]), { generation: 4, status: 'applied' });
  assert.deepEqual([records.applied()?.generation, records.applied()?.source], [4, 'bundle']);
  assert.equal(records.desired()?.upstream.password, 'secret');

  // Older: nothing rolled back.
  const older = await applier.apply(bundle(2), [img('1', 'imported', 1), img('2', 'imported', 2)]);
  assert.equal(older.status, 'older');
  assert.deepEqual([records.desired()?.generation, records.applied()?.generation], [4, 4]);
  // Nor by a sync run that started on an older desired state and finishes late.
  await records.setApplied(3, new Date().toISOString());
  assert.deepEqual([records.applied()?.generation, records.applied()?.source], [4, 'bundle']);
  await records.setApplied(4, new Date().toISOString());
  assert.equal(records.applied()?.source, 'sync', 'a sync applying the same generation takes it over');
});
