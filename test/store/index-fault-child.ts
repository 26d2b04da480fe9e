// Child process for index-faults.test.ts: drives a Store through a disk fault and prints one JSON
// line per step. A separate process because lmdb-js rejects promises nobody awaits when a commit
// fails; the satellite's policy (src/cli/satellite.ts) logs those instead of exiting, and so does
// this script, where node:test would count them against whatever test is running.
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { digestOf } from '../../src/lib/digest.ts';
import { isSatelliteError } from '../../src/lib/errors.ts';
import { isStorageWriteFault, Store } from '../../src/store/index.ts';

const [mode, dir, arg] = process.argv.slice(2) as ['full' | 'read-only', string, string];
let strays = 0;
process.on('unhandledRejection', (err) => {
  if (!isStorageWriteFault(err)) throw err;
  strays++;
});
const say = (step: string, value: unknown) => process.stdout.write(`${JSON.stringify({ step, value })}\n`);
const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (err: unknown) => (isSatelliteError(err) ? err.code : `raw: ${(err as Error).message}`));
const readAll = async (s: NodeJS.ReadableStream) => {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
};

const store = await Store.open({ dataDir: join(dir, 'data'), gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, pino({ level: 'silent' }));
const data = Buffer.from('kept through the fault');
const kept = await store.ingestBlob(Readable.from([data]), { digest: digestOf(data) }, { repo: 'r' });
// Durable metadata writes go through a typed sub-store (the control plane's outbox).
const meta = store.controlState;
const put = (key: number, bytes: number) => meta.transaction(() => meta.putOutboxItem(key, { kind: 'event', topic: 't', payload: 'x'.repeat(bytes), retain: false, at: 0 }));
await put(0, 1);

if (mode === 'full') {
  // Fill the filesystem to the last block with a file the store does not know.
  const filler = join(dir, 'filler');
  await writeFile(filler, Buffer.alloc(Number(arg))).catch(() => undefined);
    let code = 'ok';
  for (let i = 0; i < 400 && code === 'ok'; i++) code = await codeOf(put(i + 1, 64 * 1024));
  say('indexWrite', code);
  say('ingest', await codeOf(store.ingestBlob(Readable.from([Buffer.alloc(1024)]), { size: 1024 })));
  say('readBlob', await readAll(store.openBlob(kept.digest)));
  say('readIndex', store.statBlob('r', kept.digest)?.size ?? null);
  await rm(filler);
  let after = 'not tried';
  for (let i = 0; i < 20 && after !== 'ok'; i++) {
    after = await Promise.race([codeOf(put(1000, 64 * 1024)), sleep(2000).then(() => 'timeout')]);
    if (after !== 'ok') await sleep(250);
  }
  say('indexWriteAfterFree', after);
} else {
  // What an SD card's I/O error does to ext4 mounted errors=remount-ro: it stops taking writes.
  await writeFile(`/sys/fs/ext4/${arg}/trigger_fs_error`, 'harbor-satellite test');
  say('indexWrite', await codeOf(put(1000, 1)));
  say('ingest', await codeOf(store.ingestBlob(Readable.from([Buffer.from('new')]), {})));
  say('upload', await codeOf(store.createUpload('r')));
  say('condition', store.disk.refresh().condition);
  say('readBlob', await readAll(store.openBlob(kept.digest)));
  say('readIndex', store.statBlob('r', kept.digest)?.size ?? null);
  say('readMeta', meta.outboxItem(0)?.payload ?? null);
  say('probeLeft', (await readdir(join(dir, 'data'))).filter((n) => n.startsWith('.write-probe')).length);
}
say('strays', strays);
say('done', true);
// Closing an environment whose filesystem refuses writes is not what is tested here.
process.exit(0);
