import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { cp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { addAndRegister, startGroundControl } from '../helpers/groundcontrol.ts';
import { requireBinary } from '../helpers/bin.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { hostPlatform, makeLayer, sha256, writeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { gcBundleCli, offlineConfig, satelliteCli, storedBlobs } from './helpers.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** Every file under dir (relative path -> size). */
async function filesUnder(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(path.slice(dir.length + 1), (await stat(path)).size);
  }
  return out;
}

test('groundcontrol bundle create: exactly the satellite\'s images from an authenticated upstream, signed, in parts; the satellite checks the signature', async (t) => {
  // Upstream with basic auth: only Ground Control's config knows the credentials.
  const dir = await makeTempDir(t, 'hs-gcb-');
  const htpasswdFile = join(dir, 'htpasswd');
  const { stdout: htpasswd } = await run(requireBinary('htpasswd'), ['-Bbn', 'robot', 'robot-pass']);
  await writeFile(htpasswdFile, htpasswd);
  const upstream = await startDockerRegistry(t, { htpasswdFile });
  const layout = join(dir, 'layout');
  const platform = hostPlatform();
  const base = await makeLayer('gcb-base', 3 * MiB, { dir: layout });
  const imgs: Record<string, Awaited<ReturnType<typeof writeImage>>> = {};
  for (const name of ['app', 'worker', 'other']) {
    imgs[name] = await writeImage(layout, { tag: name, layers: [base, await makeLayer(`gcb-${name}`, 300_000, { dir: layout })], platform });
    await skopeoCopy(`oci:${layout}:${name}`, `docker://${upstream.host}/apps/${name}:v1`, { destCreds: 'robot:robot-pass' });
  }

  const gc = await startGroundControl(t, { config: { upstream: { url: upstream.url, username: 'robot', password: 'robot-pass' } } });
  const group = await gc.api('POST', '/api/v1/groups', { name: 'edge', images: [{ repository: 'apps/app', tags: ['v1'] }, { repository: 'apps/worker', tags: ['v1'] }] });
  assert.ok(group.status < 300, JSON.stringify(group.body));
  const reg = (await addAndRegister(gc, 'ship-1')) as Awaited<ReturnType<typeof addAndRegister>> & { bundleKey?: string };
  const assigned = await gc.api('POST', '/api/v1/assignments', { group: 'edge', satellite: reg.satelliteId });
  assert.ok(assigned.status < 300, JSON.stringify(assigned.body));

  // The key: 0600 in the data dir; its public half is what registration handed out.
  const keyFile = join(gc.dataDir, 'bundle-signing.key');
  assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
  const pub = await gcBundleCli(gc.configFile, ['key']);
  assert.equal(pub.code, 0, pub.stderr);
  assert.match(pub.stdout, /^-----BEGIN PUBLIC KEY-----/);
  assert.equal(reg.bundleKey, pub.stdout, 'registration carries the bundle key');
  const pubFile = join(dir, 'groundcontrol-bundle.pub');
  await writeFile(pubFile, pub.stdout);

  // While Ground Control runs: a bundle for the satellite, parts of at most 1 MiB.
  const bundle = join(dir, 'stick');
  const created = await gcBundleCli(gc.configFile, ['create', '--satellite', reg.satelliteId, '-o', bundle, '--part-size', '1MiB']);
  assert.equal(created.code, 0, created.stderr);
  const summary = JSON.parse(created.stdout) as { images: number; generation: number; parts: number; signed: string | null; bytes: number };
  assert.equal(summary.images, 2);
  assert.ok(summary.generation >= 1);
  assert.equal(summary.parts, 4, 'the 3 MiB base as 4 parts (3 x 1 MiB and the tar trailer)');
  assert.match(summary.signed ?? '', /^sha256:[0-9a-f]{64}$/);
  const contents = await readFile(join(bundle, 'bundle.json'), 'utf8');
  assert.ok(!contents.includes('robot-pass'), 'no upstream password on the stick');
  const doc = JSON.parse(contents) as { createdBy: string; images: Array<{ repository: string; digest: string }>; desired: { generation: number }; files: Array<{ digest: string; parts?: unknown[] }> };
  assert.equal(doc.createdBy, 'groundcontrol');
  assert.deepEqual(doc.images.map((i) => [i.repository, i.digest]), [['apps/app', imgs.app!.manifestDigest], ['apps/worker', imgs.worker!.manifestDigest]]);
  assert.equal(doc.desired.generation, summary.generation);
  assert.equal(doc.files.find((f) => f.digest === base.digest)?.parts?.length, 4);
  const onStick = await filesUnder(bundle);
  for (const [path, size] of onStick) assert.ok(size <= MiB, `${path} is ${size} bytes, over the part size`);
  assert.ok(!onStick.has(`blobs/sha256/${base.digest.slice(7)}`), 'the base is only in parts');
  assert.ok(![...onStick.keys()].some((p) => p.includes(imgs.other!.layerDigests[1]!.slice(7))), 'an image outside the desired state is not carried');

  // --group: the same images, generation 0.
  const forGroup = await gcBundleCli(gc.configFile, ['create', '--group', 'edge', '-o', join(dir, 'group-stick')]);
  assert.equal(forGroup.code, 0, forGroup.stderr);
  assert.deepEqual(JSON.parse(forGroup.stdout).images, 2);
  assert.equal((await gcBundleCli(gc.configFile, ['create', '--group', 'nope', '-o', join(dir, 'x')])).code, 1);

  // A satellite that requires signed bundles and knows the key (sync.bundleKeyFile): verified, imported.
  const signedCfg = { sync: { bundleKeyFile: pubFile, requireSignedBundles: true } };
  const dataOk = await makeTempDir(t, 'hs-gcb-ok-');
  const ok = await satelliteCli(await offlineConfig(t, dataOk, signedCfg), ['import', bundle]);
  assert.equal(ok.code, 0, ok.stderr);
  const okReport = JSON.parse(ok.stdout) as { bundleSignature: { status: string; keyId: string }; blobsImported: number };
  assert.deepEqual(okReport.bundleSignature, { status: 'verified', keyId: summary.signed });
  assert.equal(okReport.blobsImported, 5, 'base (from its parts) + 2 layers + 2 configs');
  assert.ok((await storedBlobs(dataOk)).includes(base.digest.slice(7)));

  // Refused whole, before anything is stored: a tampered list, no signature, another key, a bad part, a missing part.
  const otherKey = generateKeyPairSync('ed25519').privateKey;
  const partOf = (i: number) => join('blobs', 'sha256', `${base.digest.slice(7)}.00${i}`);
  const cases: Array<[string, (d: string) => Promise<void>, string, RegExp]> = [
    ['tampered bundle.json', async (d) => {
      const text = await readFile(join(d, 'bundle.json'), 'utf8');
      await writeFile(join(d, 'bundle.json'), text.replace('"createdBy": "groundcontrol"', '"createdBy": "groundcontrol "'));
    }, 'BUNDLE_SIGNATURE_INVALID', /does not verify/],
    ['unsigned', (d) => rm(join(d, 'bundle.sig')), 'BUNDLE_UNSIGNED', /requires bundles signed/],
    ['signed by another key', async (d) => {
      const sig = JSON.parse(await readFile(join(d, 'bundle.sig'), 'utf8')) as { signature: string };
      sig.signature = sign(null, await readFile(join(d, 'bundle.json')), otherKey).toString('base64');
      await writeFile(join(d, 'bundle.sig'), JSON.stringify(sig));
    }, 'BUNDLE_SIGNATURE_INVALID', /does not verify/],
    ['flipped byte in a part', async (d) => {
      const data = await readFile(join(d, partOf(1)));
      data[10] = data[10]! ^ 1;
      await writeFile(join(d, partOf(1)), data);
    }, 'BUNDLE_DAMAGED', /\.001 .*does not hash to its part digest/],
    ['missing part', (d) => rm(join(d, partOf(2))), 'BUNDLE_DAMAGED', /\.002 .*is missing/],
    ['truncated part', async (d) => writeFile(join(d, partOf(0)), (await readFile(join(d, partOf(0)))).subarray(0, 1000)), 'BUNDLE_DAMAGED', /\.000 is 1000 bytes/],
  ];
  for (const [what, harm, code, message] of cases) {
    const copy = join(await makeTempDir(t, 'hs-gcb-bad-'), 'stick');
    await cp(bundle, copy, { recursive: true });
    await harm(copy);
    const data = await makeTempDir(t, 'hs-gcb-sat-');
    const res = await satelliteCli(await offlineConfig(t, data, signedCfg), ['import', copy]);
    assert.equal(res.code, 1, `${what}: ${res.stdout}`);
    assert.match(res.stderr, new RegExp(code), what);
    assert.match(res.stderr, message, what);
    assert.deepEqual(await storedBlobs(data), [], `${what}: nothing imported`);
  }

  // Without requireSignedBundles an unsigned bundle is imported on its digests (reported unsigned),
  // but a signature that does not verify is refused all the same.
  const unsignedCopy = join(await makeTempDir(t, 'hs-gcb-uns-'), 'stick');
  await cp(bundle, unsignedCopy, { recursive: true });
  await rm(join(unsignedCopy, 'bundle.sig'));
  const relaxed = await satelliteCli(await offlineConfig(t, await makeTempDir(t, 'hs-gcb-rel-'), { sync: { bundleKeyFile: pubFile } }), ['import', unsignedCopy]);
  assert.equal(relaxed.code, 0, relaxed.stderr);
  assert.deepEqual(JSON.parse(relaxed.stdout).bundleSignature, { status: 'unsigned' });
  const sigOnly = JSON.parse(await readFile(join(bundle, 'bundle.sig'), 'utf8')) as unknown;
  assert.ok(sigOnly, 'bundle.sig is JSON');
  assert.equal(sha256(await readFile(join(bundle, 'blobs', 'sha256', imgs.app!.manifestDigest.slice(7)))), imgs.app!.manifestDigest);
});
