import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { requireBinary } from '../helpers/bin.ts';
import { startSatellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { bundle, NODE_FLAGS, RUNTIME_ENV } from '../../build.mjs';
import { metricsUrl } from '../observability/helpers.ts';

test('the esbuild bundle starts, serves /v2/ and a push/pull round trip', async (t) => {
  const out = await makeTempDir(t, 'hs-bundle-');
  // The bundle resolves its external native modules from the repository's node_modules.
  const outdir = join(import.meta.dirname, '..', '..', 'dist', `bundle-test-${process.pid}`);
  t.after(async () => (await import('node:fs/promises')).rm(outdir, { recursive: true, force: true }));
  const { outputs } = await bundle(outdir);
  assert.ok(outputs.some((f: string) => f.endsWith('satellite.mjs')));
  assert.ok(outputs.some((f: string) => f.endsWith('groundcontrol.mjs')));
  const sat = await startSatellite(t, { entry: join(outdir, 'satellite.mjs') });
  const res = await fetch(`${sat.url}/v2/`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  // The bounded log sink is in the bundle too: its counters reach the status.
  const status = (await (await fetch(`${sat.url}/_satellite/status`)).json()) as { log: { destination: string; droppedLines: number } | null };
  assert.equal(status.log?.destination, 'pipe');
  assert.equal(status.log?.droppedLines, 0);
  const img = await makeImage(out, { tag: 'v1', seed: 'bundle', layerSizes: [50_000] });
  await skopeoCopy(`oci:${out}:v1`, `docker://${sat.host}/bundle/app:v1`);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/bundle/app:v1`, { raw: true })), img.manifestDigest);

  // Password checks run in worker threads from bcrypt-worker.mjs, found beside the bundle.
  assert.ok(outputs.some((f: string) => f.endsWith('bcrypt-worker.mjs')));
  const htpasswd = join(out, 'htpasswd');
  const { stdout } = await promisify(execFile)(requireBinary('htpasswd'), ['-Bbn', 'edge', 's3cret']);
  await writeFile(htpasswd, stdout);
  const secured = await startSatellite(t, { entry: join(outdir, 'satellite.mjs'), config: { registry: { auth: { htpasswd } } } });
  const basic = (pass: string) => ({ Authorization: `Basic ${Buffer.from(`edge:${pass}`).toString('base64')}` });
  const wrong = await fetch(`${secured.url}/v2/`, { headers: basic('nope') });
  assert.equal(wrong.status, 401);
  await wrong.arrayBuffer();
  const right = await fetch(`${secured.url}/v2/`, { headers: basic('s3cret') });
  assert.equal(right.status, 200);
  await right.arrayBuffer();
  // prom-client works from the bundle: the push above is counted on the metrics listener.
  const metrics = await (await fetch(await metricsUrl(sat))).text();
  assert.match(metrics, /^harbor_satellite_registry_requests_total\{operation="manifest_put",status_class="2xx"\} 1$/m);
  assert.doesNotMatch(sat.logs(), /DeprecationWarning/);

  // Idle memory with the release wrapper's node flags: the domains a default config leaves off
  // (control, proxy, peers, runtimes, the upstream client) and ajv are not loaded. ~75 MiB here
  // (docs/benchmarks.md, "Memory"); before lazy loading and build-time validators it was ~100 MiB.
  const idle = await startSatellite(t, { entry: join(outdir, 'satellite.mjs'), nodeArgs: [...NODE_FLAGS.satellite], env: { ...RUNTIME_ENV.satellite } });
  await new Promise((r) => setTimeout(r, 3000));
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    const s = (await (await fetch(`${idle.url}/_satellite/status`)).json()) as { process: { rss: number } };
    samples.push(s.process.rss);
    await new Promise((r) => setTimeout(r, 500));
  }
  const median = samples.sort((a, b) => a - b)[1]!;
  assert.ok(median < 92 * 1048576, `idle RSS ${(median / 1048576).toFixed(1)} MiB (samples ${samples.map((b) => (b / 1048576).toFixed(1)).join(', ')})`);
});

test('the Ground Control bundle starts, answers its health check and serves the console built beside it', async (t) => {
  const { startGroundControl } = await import('../helpers/groundcontrol.ts');
  const outdir = join(import.meta.dirname, '..', '..', 'dist', `bundle-gc-test-${process.pid}`);
  t.after(async () => (await import('node:fs/promises')).rm(outdir, { recursive: true, force: true }));
  const { outputs } = await bundle(outdir);
  assert.ok(outputs.some((f: string) => f.endsWith('console/app.js')));
  const gc = await startGroundControl(t, { entry: join(outdir, 'groundcontrol.mjs') });
  const res = await gc.api('GET', '/api/v1/healthz');
  assert.equal(res.status, 200);
  // MQTT.js given a URL string calls url.parse(): Node's DEP0169 warning at every start.
  await gc.waitForLog(/"msg":"broker connected"/);
  assert.doesNotMatch(gc.logs(), /DeprecationWarning/);
  // From the files the release ships (lib/console/), not built at run time.
  const js = await fetch(`${gc.url}/console/app.js`);
  assert.equal(js.status, 200);
  assert.deepEqual(Buffer.from(await js.arrayBuffer()), await readFile(join(outdir, 'console', 'app.js')));
  assert.doesNotMatch(gc.logs(), /console assets built/);
  const page = await fetch(`${gc.url}/console/`);
  assert.match(await page.text(), /<script type="module" src="\/console\/app.js">/);
});
