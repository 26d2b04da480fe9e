import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { requireBinary } from '../helpers/bin.ts';
import type { Teardown } from '../helpers/cleanup.ts';

const run = promisify(execFile);

/** Both loopback: two different clients to the satellite. */
const VICTIM = '127.0.0.1';
const ATTACKER = '127.0.0.2';

async function htpasswdFile(t: Teardown): Promise<string> {
  const dir = await makeTempDir(t, 'hs-auth-flood-');
  const file = join(dir, 'htpasswd');
  // Cost 10, as `htpasswd -B` users commonly pick: ~50-100 ms of CPU per check in JavaScript.
  const out = await run(requireBinary('htpasswd'), ['-Bbn', '-C', '10', 'edge', 's3cret']);
  await writeFile(file, out.stdout);
  return file;
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** GET /v2/ from `from` with credentials: status, Retry-After and how long it took. */
function get(sat: Satellite, from: string, authorization: string): Promise<{ status: number; retryAfter: string | undefined; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(`${sat.url}/v2/`, { localAddress: from, headers: { Authorization: authorization }, agent: false });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end();
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

test('during a wrong-password flood an authorised client stays fast (median < 50 ms): bcrypt runs off the event loop', async (t) => {
  const htpasswd = await htpasswdFile(t);
  // No failure limit here: the flood really reaches bcrypt, as many addresses together would.
  const sat = await startSatellite(t, { config: { registry: { auth: { htpasswd, failuresPerMinute: 100000 } } } });
  const good = basic('edge', 's3cret');
  assert.equal((await get(sat, VICTIM, good)).status, 200);

  let stop = false;
  let wrong = 0;
  const loops = Array.from({ length: 8 }, async (_, i) => {
    while (!stop) {
      const r = await get(sat, ATTACKER, basic(i % 2 ? 'edge' : 'nobody', `guess-${wrong}`));
      assert.equal(r.status, 401);
      wrong++;
    }
  });
  await new Promise((r) => setTimeout(r, 500));
  const times: number[] = [];
  for (let i = 0; i < 40; i++) {
    const r = await get(sat, VICTIM, good);
    assert.equal(r.status, 200);
    times.push(r.ms);
    await new Promise((r) => setTimeout(r, 50));
  }
  const wrongDuring = wrong;
  stop = true;
  await Promise.all(loops);
  assert.ok(wrongDuring >= 8, `the flood ran (${wrongDuring} wrong passwords checked)`);
  const m = median(times);
  t.diagnostic(`authorised median ${m.toFixed(1)} ms during ${wrongDuring} wrong-password checks`);
  assert.ok(m < 50, `authorised median ${m.toFixed(1)} ms`);
});

test('failed password checks are limited per address (429 + Retry-After); unknown users cost the same work', async (t) => {
  const htpasswd = await htpasswdFile(t);
  const sat = await startSatellite(t, { config: { registry: { auth: { htpasswd } } } });

  // Timing does not tell whether a user exists: unknown users are checked against a dummy hash.
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < 4; i++) {
    const k = await get(sat, '127.0.0.4', basic('edge', `nope-${i}`));
    const u = await get(sat, '127.0.0.4', basic(`ghost${i}`, `nope-${i}`));
    assert.equal(k.status, 401);
    assert.equal(u.status, 401);
    known.push(k.ms);
    unknown.push(u.ms);
  }
  t.diagnostic(`wrong password: known user median ${median(known).toFixed(1)} ms, unknown user ${median(unknown).toFixed(1)} ms`);
  assert.ok(median(unknown) > median(known) / 2, 'an unknown user takes about as long as a known one');

  // Default: 10 failures per minute per address, then 429 without any bcrypt work.
  const seq: Array<{ status: number; retryAfter: string | undefined }> = [];
  for (let i = 0; i < 12; i++) seq.push(await get(sat, ATTACKER, basic('edge', `bad-${i}`)));
  assert.deepEqual(seq.slice(0, 10).map((r) => r.status), Array(10).fill(401));
  assert.deepEqual(seq.slice(10).map((r) => r.status), [429, 429]);
  assert.ok(Number(seq[11]!.retryAfter) >= 1, `Retry-After ${seq[11]!.retryAfter}`);
  // Even the right password waits out the limit from that address; others are unaffected.
  assert.equal((await get(sat, ATTACKER, basic('edge', 's3cret'))).status, 429);
  assert.equal((await get(sat, VICTIM, basic('edge', 's3cret'))).status, 200);

  // A burst of 260 wrong passwords from one address: at most 10 reach bcrypt, the registry never stalls.
  const started = performance.now();
  const burst = await Promise.all(Array.from({ length: 260 }, (_, i) => get(sat, '127.0.0.3', basic('edge', `burst-${i}`))));
  const burstMs = performance.now() - started;
  assert.ok(burst.filter((r) => r.status === 401).length <= 10);
  assert.equal(burst.filter((r) => r.status === 429).length + burst.filter((r) => r.status === 401).length, 260);
  const after = await get(sat, VICTIM, basic('edge', 's3cret'));
  assert.equal(after.status, 200);
  t.diagnostic(`260 wrong passwords answered in ${burstMs.toFixed(0)} ms; authorised request then took ${after.ms.toFixed(1)} ms`);
  // Before the fix the same burst stalled the whole registry for 22 s (260 checks on the event loop).
  assert.ok(burstMs < 20_000, `burst took ${burstMs.toFixed(0)} ms`);
  assert.doesNotMatch(sat.logs(), /s3cret|burst-|bad-/, 'passwords never reach the log');
});
