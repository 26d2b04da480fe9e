import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { copyKept } from '../../src/fetch/copy-kept.ts';

test('a body that fails while the writer is busy: the bytes it had buffered are written before the error', async () => {
  const body = new Readable({ read() {} });
  body.push(Buffer.alloc(10, 1));
  const written: Buffer[] = [];
  const copy = copyKept(body, async (chunk) => {
    written.push(chunk);
    // While the first chunk is being written, more arrives and then the link is cut.
    if (written.length === 1) {
      body.push(Buffer.alloc(7, 2));
      body.push(Buffer.alloc(5, 3));
      body.destroy(new Error('other side closed'));
      await sleep(10);
    }
  });
  await assert.rejects(copy, /other side closed/);
  assert.deepEqual(Buffer.concat(written), Buffer.concat([Buffer.alloc(10, 1), Buffer.alloc(7, 2), Buffer.alloc(5, 3)]));
});

test('a failing write stops the copy with its own error and destroys the body', async () => {
  const body = Readable.from([Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4)]);
  let calls = 0;
  await assert.rejects(
    copyKept(body, async () => {
      if (++calls === 2) throw new Error('disk full');
    }),
    /disk full/,
  );
  assert.equal(calls, 2);
  assert.ok(body.destroyed);
});
