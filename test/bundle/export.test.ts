import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, startSatellite } from '../helpers/satellite.ts';
import { startContainerd, writeHostsToml } from '../helpers/containerd.ts';
import { freePort } from '../helpers/ports.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { hostPlatform, makeLayer, sha256, writeImage } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { keyIdOf } from '../../src/lib/ed25519.ts';
import { offlineConfig, SATELLITE_ENTRY, satelliteCli, storedBlobs, syncedThreeApps } from './helpers.ts';

test('satellite bundle export: from A\'s store (filled by sync) into B with no upstream at all; base stored once; signed by the operator\'s key; one image readable by skopeo', async (t) => {
  // Satellite A syncs the three images (a's signature replicated under a warn policy).
  const { base, apps, sig, dir, satA } = await syncedThreeApps(t, 'export', 4);

  // The operator's signing key (what `openssl genpkey -algorithm ed25519` writes) and its public half.
  const op = generateKeyPairSync('ed25519');
  const keyFile = join(dir, 'export.key');
  const pubFile = join(dir, 'export.pub');
  await writeFile(keyFile, op.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  await writeFile(pubFile, op.publicKey.export({ type: 'spki', format: 'pem' }) as string);

  // --all from the running satellite (over its admin socket), signed.
  const stick = join(await makeTempDir(t, 'hs-export-stick-'), 'stick');
  const made = await satelliteCli(satA.configFile, ['export', '--all', '-o', stick, '--key', keyFile]);
  assert.equal(made.code, 0, made.stderr);
  const summary = JSON.parse(made.stdout) as { images: number; blobs: number; bytes: number; signed: string | null; generation: number | null };
  assert.deepEqual([summary.images, summary.generation, summary.signed], [3, 4, keyIdOf(op.publicKey)]);
  assert.match(satA.logs(), /"msg":"bundle exported"/, 'the running satellite wrote it');
  const list = JSON.parse(await readFile(join(stick, 'bundle.json'), 'utf8')) as {
    createdBy: string;
    desired: { generation: number; upstream: { url: string; password?: string } };
    images: Array<{ repository: string; reference: string; signature?: { digest: string } }>;
    files: Array<{ path: string; digest: string; size: number }>;
  };
  assert.equal(list.createdBy, 'satellite');
  assert.equal(list.desired.generation, 4);
  assert.deepEqual(list.images.map((i) => `${i.repository}:${i.reference}`).sort(), ['apps/a:v1', 'apps/b:v1', 'apps/c:v1'], 'the signature tag is not an image of its own');
  assert.equal(list.images.find((i) => i.repository === 'apps/a')?.signature?.digest, sig.manifestDigest, 'signatures held travel along');
  // Every blob once: 1 base + 3 layers + 3 configs + 3 manifests + a's signature (manifest, config, payload).
  const blobFiles = await readdir(join(stick, 'blobs', 'sha256'));
  assert.equal(blobFiles.length, 13);
  const onDisk = (await Promise.all(blobFiles.map((f) => stat(join(stick, 'blobs', 'sha256', f))))).reduce((n, s) => n + s.size, 0);
  assert.equal(onDisk, summary.bytes);
  assert.ok(onDisk < base.size * 2, `the base is carried once: ${onDisk} bytes for three images`);
  assert.equal((await stat(join(stick, 'blobs', 'sha256', base.digest.slice(7)))).size, base.size);
  const index = JSON.parse(await readFile(join(stick, 'index.json'), 'utf8')) as { manifests: Array<{ annotations: Record<string, string> }> };
  assert.deepEqual(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']).sort(), ['apps/a:v1', 'apps/a:' + sig.tag, 'apps/b:v1', 'apps/c:v1'].sort());

  // B: no upstream, no control; it trusts the operator's key and requires signed bundles.
  const dataB = await makeTempDir(t, 'hs-export-b-');
  const cfgB = await offlineConfig(t, dataB, { sync: { bundleKeyFile: pubFile, requireSignedBundles: true } });
  const imported = await satelliteCli(cfgB, ['import', stick]);
  assert.equal(imported.code, 0, imported.stderr);
  const r = JSON.parse(imported.stdout) as { blobsImported: number; bundleSignature: { status: string }; desired: { generation: number; status: string } };
  assert.deepEqual([r.blobsImported, r.bundleSignature.status, r.desired.status, r.desired.generation], [7, 'verified', 'applied', 4]);
  const satB = await startSatellite(t, { dataDir: dataB, config: { sync: { bundleKeyFile: pubFile, requireSignedBundles: true } } });
  const pulled = await makeTempDir(t, 'hs-export-pulled-');
  await skopeoCopy(`docker://${satB.host}/apps/c:v1`, `oci:${pulled}:c`);
  assert.equal(sha256(await readFile(join(pulled, 'blobs', 'sha256', base.digest.slice(7)))), base.digest);
  assert.equal(sha256(await skopeoInspect(`oci:${pulled}:c`, { raw: true })), apps[2]!.img.manifestDigest);
  const sigRes = await fetch(`${satB.url}/v2/apps/a/manifests/${sig.tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(sigRes.status, 200);
  assert.equal(sha256(Buffer.from(await sigRes.arrayBuffer())), sig.manifestDigest);
  // containerd pulls from B by the upstream's name, which answers nowhere (a closed loopback port).
  const containerd = await startContainerd(t);
  const hostsDir = await makeTempDir(t, 'hs-export-hosts-');
  await writeHostsToml(hostsDir, 'upstream.test:5000', { server: `http://127.0.0.1:${await freePort()}`, mirrors: [{ url: `http://${satB.host}`, capabilities: ['pull', 'resolve'] }] });
  assert.equal(await containerd.pull('upstream.test:5000/apps/b:v1', { hostsDir }), apps[1]!.img.manifestDigest);

  // One image, exported with A stopped (the CLI opens the store), unsigned: a plain OCI layout for skopeo.
  await satA.stop();
  const one = join(await makeTempDir(t, 'hs-export-one-'), 'stick');
  const single = await satelliteCli(satA.configFile, ['export', '--image', 'apps/b:v1', '-o', one]);
  assert.equal(single.code, 0, single.stderr);
  const s1 = JSON.parse(single.stdout) as { images: number; blobs: number; signed: string | null; generation: number | null };
  assert.deepEqual([s1.images, s1.blobs, s1.signed, s1.generation], [1, 4, null, null], 'a partial export carries no desired state');
  const copied = await makeTempDir(t, 'hs-export-copied-');
  await skopeoCopy(`oci:${one}:apps/b:v1`, `oci:${copied}:b`);
  assert.equal(sha256(await skopeoInspect(`oci:${copied}:b`, { raw: true })), apps[1]!.img.manifestDigest);

  // An unsigned export is refused where signed bundles are required, with the code; nothing stored.
  const dataC = await makeTempDir(t, 'hs-export-c-');
  const refused = await satelliteCli(await offlineConfig(t, dataC, { sync: { bundleKeyFile: pubFile, requireSignedBundles: true } }), ['import', one]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /BUNDLE_UNSIGNED/);
  assert.deepEqual(await storedBlobs(dataC), []);
  // What the store does not hold is a clear error.
  const missing = await satelliteCli(satA.configFile, ['export', '--image', 'apps/zz:v9', '-o', join(dir, 'none')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /NOT_FOUND: apps\/zz:v9 is not in this satellite's store/);
});

/** `satellite --config CFG bundle ...` with its peak RSS sampled every 10 ms (printed at exit). */
async function exportWithPeakRss(configFile: string, args: string[]): Promise<{ code: number; stdout: string; peakRss: number }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const probe = `data:text/javascript,let m=0;const s=()=>{m=Math.max(m,process.memoryUsage.rss())};setInterval(s,10).unref();process.on('exit',()=>{s();process.stderr.write('PEAK_RSS '+m+'\\n')})`;
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', probe, SATELLITE_ENTRY, '--config', configFile, 'bundle', ...args], { cwd: REPO_ROOT, env }, (err, stdout, stderr) => {
      const peak = /PEAK_RSS (\d+)/.exec(stderr);
      assert.ok(peak, stderr);
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, peakRss: Number(peak[1]) });
    });
  });
}

test('satellite bundle export streams blobs: a 160 MiB layer is written in 64 MiB parts with bounded memory, and B imports it whole', async (t) => {
  const MiB = 1024 * 1024;
  const layout = await makeTempDir(t, 'hs-export-big-layout-');
  const platform = hostPlatform();
  await writeImage(layout, { tag: 'small', layers: [await makeLayer('export-small', 100_000, { dir: layout })], platform });
  const bigLayer = await makeLayer('export-big', 160 * MiB, { dir: layout });
  const big = await writeImage(layout, { tag: 'big', layers: [bigLayer], platform });
  // A is filled by pushes (skopeo), then stopped: the CLI opens its store.
  const satA = await startSatellite(t);
  await skopeoCopy(`oci:${layout}:small`, `docker://${satA.host}/apps/small:v1`);
  await skopeoCopy(`oci:${layout}:big`, `docker://${satA.host}/apps/big:v1`);
  await satA.stop();

  const out = await makeTempDir(t, 'hs-export-big-');
  const baseline = await exportWithPeakRss(satA.configFile, ['export', '--image', 'apps/small:v1', '-o', join(out, 'small')]);
  assert.equal(baseline.code, 0);
  const res = await exportWithPeakRss(satA.configFile, ['export', '--image', 'apps/big:v1', '-o', join(out, 'big'), '--part-size', '64MiB']);
  assert.equal(res.code, 0);
  assert.equal((JSON.parse(res.stdout) as { parts: number }).parts, 3);
  const grew = res.peakRss - baseline.peakRss;
  console.log(`export peak RSS: ${(baseline.peakRss / MiB).toFixed(0)} MiB for 100 kB, ${(res.peakRss / MiB).toFixed(0)} MiB for a ${(bigLayer.size / MiB).toFixed(0)} MiB layer`);
  // Measured here: +66 MiB for a 160 MiB blob and the same for 320 MiB (read buffers not yet collected);
  // a blob held whole would add at least its 160 MiB.
  assert.ok(grew < 100 * MiB, `peak RSS grew ${(grew / MiB).toFixed(0)} MiB exporting a 160 MiB blob: it must stream`);
  const parts = (await readdir(join(out, 'big', 'blobs', 'sha256'))).filter((f) => f.startsWith(bigLayer.digest.slice(7)));
  assert.deepEqual(parts.sort(), ['000', '001', '002'].map((n) => `${bigLayer.digest.slice(7)}.${n}`));

  const dataB = await makeTempDir(t, 'hs-export-big-b-');
  const imported = await satelliteCli(await offlineConfig(t, dataB), ['import', join(out, 'big')]);
  assert.equal(imported.code, 0, imported.stderr);
  const satB = await startSatellite(t, { dataDir: dataB });
  const res2 = await fetch(`${satB.url}/v2/apps/big/blobs/${bigLayer.digest}`);
  assert.equal(res2.status, 200);
  const hash = (await import('node:crypto')).createHash('sha256');
  for await (const chunk of res2.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
  assert.equal(`sha256:${hash.digest('hex')}`, bigLayer.digest);
  assert.equal(sha256(await skopeoInspect(`docker://${satB.host}/apps/big:v1`, { raw: true })), big.manifestDigest);
});
