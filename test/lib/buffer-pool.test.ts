import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool } from '../../src/lib/buffer-pool.ts';

test('a burst of streams cannot lease more than the budget in large chunks', () => {
  const KiB = 1024;
  const pool = new BufferPool({ budgetBytes: 1024 * KiB, minChunkBytes: 64 * KiB, maxChunkBytes: 512 * KiB });
  // Four streams join before any reads: each was told the chunk size of its own arrival.
  const sizes = [pool.join(), pool.join(), pool.join(), pool.join()];
  assert.deepEqual(sizes, [512 * KiB, 256 * KiB, 128 * KiB, 128 * KiB]);
  const leased = sizes.flatMap((s) => [pool.acquire(s), pool.acquire(s)]);
  // Without the cap: 2 × (512 + 256 + 128 + 128) KiB = 2 MiB, twice the budget.
  assert.ok(pool.stats().leasedBytes <= 1024 * KiB + 8 * 64 * KiB, `leased ${pool.stats().leasedBytes}`);
  assert.equal(leased[0]!.length, 512 * KiB, 'the first stream still gets its large chunk');
  assert.ok(leased.every((b) => b.length >= 64 * KiB), 'never below the minimum chunk');
  for (const b of leased) pool.release(b);
  assert.equal(pool.stats().leasedBytes, 0);
});
