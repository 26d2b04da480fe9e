import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:net';
import { startSatellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';

const WARNING = /"level":40,.*"msg":"registry accepts anonymous pushes/;

test('out of the box the registry takes anonymous pulls but refuses anonymous pushes and deletes (403 DENIED)', async (t) => {
  const layout = await makeTempDir(t, 'hs-anon-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'anonymous-push', layerSizes: [40_000] });

  // Seeded by a satellite that opted in: it says so at start.
  const open = await startSatellite(t, { config: { registry: { anonymousPush: true } } });
  assert.match(open.logs(), WARNING, 'an open registry warns at start');
  await skopeoCopy(`oci:${layout}:v1`, `docker://${open.host}/anon/app:v1`);
  await open.stop();

  // The same data, the product default: `anonymousPush` absent from the file.
  const sat = await startSatellite(t, { dataDir: open.dataDir, config: { registry: { anonymousPush: undefined } } });
  assert.doesNotMatch(sat.logs(), WARNING);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/anon/app:v1`, { raw: true })), img.manifestDigest, 'pulls still work');

  const expectDenied = async (method: string, path: string, body?: string) => {
    const res = await fetch(`${sat.url}${path}`, { method, ...(body !== undefined ? { body } : {}) });
    assert.equal(res.status, 403, `${method} ${path}`);
    const json = (await res.json()) as { errors: Array<{ code: string; message: string }> };
    assert.equal(json.errors[0]!.code, 'DENIED');
    assert.match(json.errors[0]!.message, /registry\.auth/);
  };
  await expectDenied('POST', '/v2/anon/app/blobs/uploads/');
  await expectDenied('POST', `/v2/anon/app/blobs/uploads/?digest=sha256:${'0'.repeat(64)}`, 'x');
  await expectDenied('PUT', '/v2/anon/app/manifests/v2', '{}');
  await expectDenied('DELETE', `/v2/anon/app/manifests/${img.manifestDigest}`);
  await expectDenied('DELETE', `/v2/anon/app/blobs/${img.layerDigests[0]}`);
  await expectDenied('DELETE', '/v2/anon/app/manifests/v1');
  // Other spellings of the same route are refused too (absolute-form target, dot segments, no /v2/ prefix as sent).
  for (const target of [`http://${sat.host}/v2/anon/app/blobs/uploads/`, '/v2/x/../anon/app/blobs/uploads/', '/./v2/anon/app/blobs/uploads/']) {
    const socket = connect({ host: '127.0.0.1', port: sat.port });
    socket.end(`POST ${target} HTTP/1.1\r\nHost: ${sat.host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    const chunks: Buffer[] = [];
    for await (const c of socket) chunks.push(c as Buffer);
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 403 [\s\S]*"DENIED"/, target);
  }
  await assert.rejects(skopeoCopy(`oci:${layout}:v1`, `docker://${sat.host}/anon/other:v1`), /denied|403/i);

  // Nothing changed: the image is whole, no upload session was opened.
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/anon/app:v1`, { raw: true })), img.manifestDigest);
  assert.deepEqual(await readdir(join(sat.dataDir, 'uploads')), []);
  const tags = await fetch(`${sat.url}/v2/anon/other/tags/list`);
  assert.equal(tags.status, 404);
  await tags.arrayBuffer();
});
