import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ImageProgress } from '../../src/sync/image-progress.ts';
import type { ImageState } from '../../src/sync/index.ts';

const d = (c: string) => `sha256:${c.repeat(64)}`;

test('image progress: images being applied read pending with bytes on disk; a committed outcome wins', () => {
  const stored = new Set([d('a')]);
  const partial = new Map([[d('b'), 300]]);
  const store = { hasBlob: (x: string) => stored.has(x), partialBytes: (x: string) => partial.get(x) };
  const p = new ImageProgress();
  const old = '2020-01-01T00:00:00.000Z';
  const records: ImageState[] = [
    { repository: 'app/web', reference: 'v1', status: 'ok', updatedAt: old },
    { repository: 'app/db', reference: '16', status: 'failed', code: 'UPSTREAM_UNREACHABLE', reason: 'down', updatedAt: old },
  ];
  assert.equal(p.merge(records, store), records, 'nothing in progress: the records as they are');
  p.begin({ repository: 'app/db', reference: '16' }, [{ digest: d('a'), size: 100 }, { digest: d('b'), size: 1000 }, { digest: d('c'), size: 500 }]);
  p.begin({ repository: 'app/new', reference: '1' }, [{ digest: d('b'), size: 1000 }]);
  const merged = p.merge(records, store);
  assert.deepEqual(merged[0], records[0]);
  assert.deepEqual(merged[1], { ...records[1], status: 'pending', bytesDone: 400, bytesTotal: 1600 }, 'a retried image keeps its last failure');
  assert.equal(merged[2]?.status, 'pending');
  assert.deepEqual([merged[2]?.repository, merged[2]?.bytesDone, merged[2]?.bytesTotal], ['app/new', 300, 1000]);
  // The outcome recorded after begin(): shown as recorded even before end().
  const done = [{ ...records[1]!, status: 'ok' as const, code: undefined, updatedAt: new Date(Date.now() + 1000).toISOString() }];
  assert.equal(p.merge(done, store)[0]?.status, 'ok');
  p.end({ repository: 'app/db', reference: '16' });
  p.end({ repository: 'app/new', reference: '1' });
  assert.equal(p.merge(records, store), records);
});
