import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { seededBytes } from '../helpers/fixtures.ts';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Streams `data` in 64 KiB chunks with a pause between them; resolves when `stopAfter` bytes went out. */
function slowUpload(sat: Satellite, method: string, path: string, data: Buffer, stopAfter: number, headers: Record<string, string> = {}) {
  const req = request(`${sat.url}${path}`, {
    method,
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length), ...headers },
  });
  req.on('error', () => undefined); // the server is about to die under it
  const sent = (async () => {
    let off = 0;
    while (off < stopAfter) {
      const end = Math.min(off + 65536, data.length);
      if (!req.write(data.subarray(off, end))) await new Promise((r) => req.once('drain', r));
      off = end;
      await sleep(2);
    }
    return off;
  })();
  return { req, sent };
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Every committed blob file's content matches its name: nothing half-written or corrupt is visible. */
async function assertBlobFilesIntact(dataDir: string): Promise<number> {
  let n = 0;
  const root = join(dataDir, 'blobs', 'sha256');
  for (const prefix of await readdir(root)) {
    for (const hex of await readdir(join(root, prefix))) {
      assert.equal(await hashFile(join(root, prefix, hex)), `sha256:${hex}`);
      n++;
    }
  }
  return n;
}

test('kill -9 mid-upload: nothing half-written is visible, and a chunked upload resumes after restart', async (t) => {
  const dataDir = await makeTempDir(t, 'hs-crash-');
  const mono = seededBytes('crash-mono', 8 * 1024 * 1024);
  const chunked = seededBytes('crash-chunked', 6 * 1024 * 1024);
  const first = await startSatellite(t, { dataDir });

  // A complete small blob before the crash must survive it.
  const small = seededBytes('survivor', 100_000);
  const put = await fetch(`${first.url}/v2/crash/blobs/uploads/?digest=${sha256(small)}`, { method: 'POST', body: small });
  assert.equal(put.status, 201);

  const start = await fetch(`${first.url}/v2/crash/blobs/uploads/`, { method: 'POST' });
  const location = start.headers.get('location')!;
  const c1 = await fetch(`${first.url}${location}`, {
    method: 'PATCH',
    body: chunked.subarray(0, 2 * 1024 * 1024),
    headers: { 'Content-Range': `0-${2 * 1024 * 1024 - 1}` },
  });
  assert.equal(c1.status, 202);

  const monoUpload = slowUpload(first, 'POST', `/v2/crash/blobs/uploads/?digest=${sha256(mono)}`, mono, 3 * 1024 * 1024);
  const chunkUpload = slowUpload(first, 'PATCH', location, chunked.subarray(2 * 1024 * 1024), 2 * 1024 * 1024, {
    'Content-Range': `${2 * 1024 * 1024}-${chunked.length - 1}`,
  });
  const [monoSent, chunkSent] = await Promise.all([monoUpload.sent, chunkUpload.sent]);
  assert.ok(monoSent < mono.length && chunkSent < chunked.length);
  const exit = await first.kill('SIGKILL');
  assert.equal(exit.signal, 'SIGKILL');
  monoUpload.req.destroy();
  chunkUpload.req.destroy();

  const second = await startSatellite(t, { dataDir });
  assert.match(second.logs(), /"msg":"store reconciled"/);
  assert.deepEqual(await readdir(join(dataDir, 'ingest')), [], 'temp files of the killed upload are gone');
  const monoHead = await fetch(`${second.url}/v2/crash/blobs/${sha256(mono)}`, { method: 'HEAD' });
  assert.equal(monoHead.status, 404, 'an interrupted monolithic upload is not visible');
  const smallGet = await fetch(`${second.url}/v2/crash/blobs/${sha256(small)}`);
  assert.equal(sha256(Buffer.from(await smallGet.arrayBuffer())), sha256(small));

  // The session survived with a durable offset at least as far as the acknowledged chunk.
  const status = await fetch(`${second.url}${location}`);
  assert.equal(status.status, 204);
  const offset = Number(/^0-(\d+)$/.exec(status.headers.get('range') ?? '')![1]) + 1;
  assert.ok(offset >= 2 * 1024 * 1024 && offset <= 2 * 1024 * 1024 + chunkSent, `offset ${offset}`);
  assert.equal((await stat(join(dataDir, 'uploads', location.split('/').pop()!))).size, offset);
  const rest = await fetch(`${second.url}${location}`, {
    method: 'PATCH',
    body: chunked.subarray(offset),
    headers: { 'Content-Range': `${offset}-${chunked.length - 1}` },
  });
  assert.equal(rest.status, 202, await rest.text());
  const done = await fetch(`${second.url}${location}?digest=${sha256(chunked)}`, { method: 'PUT' });
  assert.equal(done.status, 201, await done.text());
  const got = await fetch(`${second.url}/v2/crash/blobs/${sha256(chunked)}`);
  assert.equal(sha256(Buffer.from(await got.arrayBuffer())), sha256(chunked));
  assert.equal(await assertBlobFilesIntact(dataDir), 2);
});

test('kill -9 during a burst of manifest puts leaves every tag pointing at a complete manifest', async (t) => {
  const dataDir = await makeTempDir(t, 'hs-crash-');
  const first = await startSatellite(t, { dataDir });
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layers = [seededBytes('l1', 50_000), seededBytes('l2', 70_000)];
  for (const b of [config, ...layers]) {
    const res = await fetch(`${first.url}/v2/burst/app/blobs/uploads/?digest=${sha256(b)}`, { method: 'POST', body: b });
    assert.equal(res.status, 201);
  }
  const manifest = (i: number) =>
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l), size: l.length })),
      annotations: { n: String(i) },
    });
  // A continuous burst, 16 puts always in flight, until the process dies under it.
  let acked = 0;
  let killed = false;
  const statuses: number[] = [];
  const put = (i: number) =>
    fetch(`${first.url}/v2/burst/app/manifests/t${i}`, {
      method: 'PUT',
      body: manifest(i),
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    }).then(
      (r) => {
        statuses[i] = r.status;
        if (r.status === 201) acked++;
      },
      () => {
        statuses[i] = 0;
      },
    );
  let next = 0;
  const worker = async () => {
    while (!killed && next < 5000) await put(next++);
  };
  const workers = Array.from({ length: 16 }, worker);
  while (acked < 20) await sleep(1);
  killed = true;
  await first.kill('SIGKILL');
  await Promise.all(workers);
  const acknowledged = statuses.map((s, i) => (s === 201 ? i : -1)).filter((i) => i >= 0);
  assert.ok(acknowledged.length >= 20, `${acknowledged.length} acknowledged`);
  assert.ok(statuses.some((s) => s !== 201), 'some puts were in flight when the process died');

  const second = await startSatellite(t, { dataDir });
  const list = (await (await fetch(`${second.url}/v2/burst/app/tags/list`)).json()) as { tags: string[] };
  for (const i of acknowledged) assert.ok(list.tags.includes(`t${i}`), `acknowledged tag t${i} survived`);
  for (const tag of list.tags) {
    const res = await fetch(`${second.url}/v2/burst/app/manifests/${tag}`);
    assert.equal(res.status, 200);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.headers.get('docker-content-digest'), sha256(body));
    assert.equal(body.toString(), manifest(Number(tag.slice(1))));
  }
  for (const b of [config, ...layers]) {
    assert.equal((await fetch(`${second.url}/v2/burst/app/blobs/${sha256(b)}`, { method: 'HEAD' })).status, 200);
  }
  t.diagnostic(`${acknowledged.length} puts acknowledged before the kill, ${list.tags.length} tags after restart`);
});
