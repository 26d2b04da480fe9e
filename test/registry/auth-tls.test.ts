import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { startSatellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { requireBinary } from '../helpers/bin.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';

const run = promisify(execFile);

test('basic auth from an htpasswd bcrypt file, over TLS, with skopeo as the client', async (t) => {
  const dir = await makeTempDir(t, 'hs-auth-');
  const htpasswd = join(dir, 'htpasswd');
  const out = await run(requireBinary('htpasswd'), ['-Bbn', 'edge', 's3cret']);
  await (await import('node:fs/promises')).writeFile(htpasswd, out.stdout);
  await run(requireBinary('openssl'), [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ]);
  const sat = await startSatellite(t, {
    config: { registry: { auth: { htpasswd, realm: 'edge-site' }, tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } } },
  });
  const base = `https://127.0.0.1:${sat.port}`;
  const dispatcher = new Agent({ connect: { ca: await readFile(join(dir, 'cert.pem')) } });
  t.after(() => dispatcher.close());

  const anon = await undiciFetch(`${base}/v2/`, { dispatcher });
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get('www-authenticate'), 'Basic realm="edge-site"');
  assert.equal(((await anon.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNAUTHORIZED');
  const auth = (user: string, pass: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });
  const wrong = await undiciFetch(`${base}/v2/`, { dispatcher, headers: auth('edge', 'nope') });
  assert.equal(wrong.status, 401);
  await wrong.arrayBuffer();
  const ok = await undiciFetch(`${base}/v2/`, { dispatcher, headers: auth('edge', 's3cret') });
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
  // Plain HTTP on a TLS port gets nowhere.
  await assert.rejects(fetch(`http://127.0.0.1:${sat.port}/v2/`).then((r) => r.arrayBuffer()));

  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'auth', layerSizes: [100_000] });
  await assert.rejects(skopeoCopy(`oci:${layout}:v1`, `docker://127.0.0.1:${sat.port}/secure/app:v1`), /unauthorized|401/i);
  await skopeoCopy(`oci:${layout}:v1`, `docker://127.0.0.1:${sat.port}/secure/app:v1`, { destCreds: 'edge:s3cret' });
  const raw = await skopeoInspect(`docker://127.0.0.1:${sat.port}/secure/app:v1`, { raw: true, creds: 'edge:s3cret' });
  assert.equal(sha256(raw), img.manifestDigest);
  assert.doesNotMatch(sat.logs(), /s3cret/, 'credentials never reach the log');
});
