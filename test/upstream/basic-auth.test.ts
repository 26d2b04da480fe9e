import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'node:test';
import { promisify } from 'node:util';
import { requireBinary } from '../helpers/bin.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { UpstreamErrorCode } from '../../src/upstream/index.ts';
import { bigLayer, captureLog, pushFixtures, readAll, rejectsWithCode, upstreamClient } from './setup.ts';

const run = promisify(execFile);

test('docker-registry with htpasswd basic auth', async (t) => {
  const dir = await makeTempDir(t, 'hs-upstream-basic-');
  const htpasswdFile = join(dir, 'htpasswd');
  const { stdout } = await run(requireBinary('htpasswd'), ['-Bbn', 'satellite', 'p@ss:word']);
  await writeFile(htpasswdFile, stdout);
  const registry = await startDockerRegistry(t, { htpasswdFile });
  const fx = await pushFixtures(t, registry, 'satellite:p@ss:word');
  const layer = await bigLayer(fx);

  await t.test('the right credentials read manifests and blobs', async () => {
    const logs = captureLog();
    const { client } = upstreamClient(t, { url: registry.url, username: 'satellite', password: 'p@ss:word' }, logs.log);
    await client.ping();
    const m = await client.getManifest(fx.repo, 'v1');
    assert.equal(m.digest, fx.image.manifestDigest);
    assert.equal((await client.resolveTag(fx.repo, 'multi')).digest, fx.index.indexDigest);
    const blob = await client.fetchBlob(fx.repo, layer.digest, { offset: 10 });
    assert.equal(blob.status, 206);
    assert.deepEqual(await readAll(blob.body), layer.bytes.subarray(10));
    const basic = Buffer.from('satellite:p@ss:word').toString('base64');
    assert.doesNotMatch(logs.text(), /p@ss:word/);
    assert.ok(!logs.text().includes(basic), 'the Authorization value is never logged');
  });

  await t.test('wrong or missing credentials are UPSTREAM_AUTH', async () => {
    const wrong = upstreamClient(t, { url: registry.url, username: 'satellite', password: 'nope' }).client;
    const err = await rejectsWithCode(wrong.ping(), UpstreamErrorCode.auth);
    assert.match(err.message, /401/);
    assert.match(err.message, /basic credentials/);
    await rejectsWithCode(wrong.getManifest(fx.repo, 'v1'), UpstreamErrorCode.auth);
    await rejectsWithCode(wrong.fetchBlob(fx.repo, layer.digest), UpstreamErrorCode.auth);
    const none = upstreamClient(t, { url: registry.url }).client;
    const anon = await rejectsWithCode(none.getManifest(fx.repo, 'v1'), UpstreamErrorCode.auth);
    assert.match(anon.message, /no credentials configured/);
  });
});
