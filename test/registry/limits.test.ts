import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, get, type IncomingMessage } from 'node:http';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeLayer } from '../helpers/fixtures.ts';

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function pushFile(sat: Satellite, repo: string, path: string, digest: string, size: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = request(`${sat.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { 'Content-Length': String(size), 'Content-Type': 'application/octet-stream' },
    });
    req.on('response', (res) => {
      res.resume();
      res.statusCode === 201 ? resolve() : reject(new Error(`push answered ${res.statusCode}`));
    });
    req.on('error', reject);
    createReadStream(path).pipe(req);
  });
}

/** A client that reads at a limited pace: backpressure must reach the server's disk reads. */
function slowDownload(url: string): { received: () => number; res: Promise<IncomingMessage>; destroy: () => void } {
  let received = 0;
  let response: IncomingMessage | undefined;
  const req = get(url);
  req.on('error', () => undefined);
  const res = new Promise<IncomingMessage>((resolve) => {
    req.on('response', (r) => {
      response = r;
      r.on('error', () => undefined);
      r.pipe(
        new Writable({
          highWaterMark: 64 * 1024,
          write(chunk: Buffer, _enc, cb) {
            received += chunk.length;
            setTimeout(cb, 5);
          },
        }),
      );
      resolve(r);
    });
  });
  return { received: () => received, res, destroy: () => (response ? response.destroy() : req.destroy()) };
}

test('slow readers of a large blob keep the server memory bounded; the request cap answers 429', async (t) => {
  const dir = await makeTempDir(t, 'hs-limits-');
  const layer = await makeLayer('big-blob', 64 * 1024 * 1024, { dir });
  const sat = await startSatellite(t, { config: { registry: { maxConcurrentRequests: 16 } } });
  await pushFile(sat, 'big/blob', layer.path, layer.digest, layer.size);
  await sleep(500);
  const baseline = await rssBytes(sat.proc.pid!);

  const clients = Array.from({ length: 16 }, () => slowDownload(`${sat.url}/v2/big/blob/blobs/${layer.digest}`));
  await Promise.all(clients.map((c) => c.res));
  let peak = baseline;
  for (let i = 0; i < 20; i++) {
    await sleep(100);
    peak = Math.max(peak, await rssBytes(sat.proc.pid!));
  }
  // Every slot is taken by a slow download: the next request is refused at once, not queued.
  const refused = await fetch(`${sat.url}/v2/`);
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get('retry-after'), '1');
  assert.equal(((await refused.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'TOOMANYREQUESTS');

  for (const c of clients) {
    assert.ok(c.received() > 1024 * 1024, 'each client is really streaming');
    assert.ok(c.received() < layer.size, 'and is still mid-blob');
  }
  for (const c of clients) c.destroy();
  const growth = peak - baseline;
  t.diagnostic(`RSS baseline ${(baseline / 2 ** 20).toFixed(1)} MiB, peak ${(peak / 2 ** 20).toFixed(1)} MiB with 16 slow readers of a 64 MiB blob`);
  // Buffering whole blobs would cost 16 x 64 MiB; streaming costs a few chunks per client.
  assert.ok(growth < 48 * 1024 * 1024, `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`);

  // Slots are released when clients go away.
  await sleep(200);
  const after = await fetch(`${sat.url}/v2/`);
  assert.equal(after.status, 200);
  await after.arrayBuffer();
});
