import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** A request with the path sent exactly as given (fetch would normalise "..").*/
function rawRequest(base: string, method: string, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { errors: Array<{ code: string }> };
  return body.errors[0]!.code;
}

describe('OCI distribution API (real satellite process)', () => {
  let sat: Satellite;
  let u: (path: string) => string;
  const teardown: Array<() => unknown> = [];
  after(async () => {
    for (const fn of teardown.reverse()) await fn();
  });
  before(async () => {
    sat = await startSatellite({ after: (fn: () => unknown) => void teardown.push(fn) }, { config: { registry: { maxManifestBytes: 4096 } } });
    u = (p) => `${sat.url}${p}`;
  });

  async function pushBlob(repo: string, data: Buffer): Promise<string> {
    const digest = sha256(data);
    const res = await fetch(u(`/v2/${repo}/blobs/uploads/?digest=${digest}`), {
      method: 'POST',
      body: data,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(res.status, 201, await res.text());
    return digest;
  }

  async function pushImage(repo: string, tag: string, extra: object = {}) {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed: randomBytes(4).toString('hex') }));
    const layer = randomBytes(2048);
    const configDigest = await pushBlob(repo, config);
    const layerDigest = await pushBlob(repo, layer);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
        ...extra,
      }),
    );
    const res = await fetch(u(`/v2/${repo}/manifests/${tag}`), { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } });
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('docker-content-digest'), sha256(manifest));
    return { manifest, digest: sha256(manifest), layer, layerDigest, configDigest, res };
  }

  test('GET /v2/ answers 200 with the API version header', async () => {
    const res = await fetch(u('/v2/'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  test('blob GET/HEAD: headers, ranges, 416, conditional GET', async () => {
    const data = randomBytes(1000);
    const digest = await pushBlob('ranges/test', data);
    const head = await fetch(u(`/v2/ranges/test/blobs/${digest}`), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '1000');
    assert.equal(head.headers.get('docker-content-digest'), digest);
    assert.equal(head.headers.get('etag'), `"${digest}"`);
    assert.equal(head.headers.get('accept-ranges'), 'bytes');

    const full = await fetch(u(`/v2/ranges/test/blobs/${digest}`));
    assert.deepEqual(Buffer.from(await full.arrayBuffer()), data);

    const part = await fetch(u(`/v2/ranges/test/blobs/${digest}`), { headers: { Range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 10-19/1000');
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), data.subarray(10, 20));

    const open = await fetch(u(`/v2/ranges/test/blobs/${digest}`), { headers: { Range: 'bytes=990-' } });
    assert.equal(open.status, 206);
    assert.deepEqual(Buffer.from(await open.arrayBuffer()), data.subarray(990));

    const suffix = await fetch(u(`/v2/ranges/test/blobs/${digest}`), { headers: { Range: 'bytes=-5' } });
    assert.equal(suffix.headers.get('content-range'), 'bytes 995-999/1000');
    assert.deepEqual(Buffer.from(await suffix.arrayBuffer()), data.subarray(995));

    const beyond = await fetch(u(`/v2/ranges/test/blobs/${digest}`), { headers: { Range: 'bytes=1000-' } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), 'bytes */1000');
    await beyond.arrayBuffer();

    const cached = await fetch(u(`/v2/ranges/test/blobs/${digest}`), { headers: { 'If-None-Match': `"${digest}"` } });
    assert.equal(cached.status, 304);
  });

  test('chunked upload with Content-Range, wrong offset 416, status, resume and finish', async () => {
    const data = randomBytes(3000);
    const digest = sha256(data);
    const start = await fetch(u('/v2/chunked/blobs/uploads/'), { method: 'POST' });
    assert.equal(start.status, 202);
    const location = start.headers.get('location')!;
    assert.match(location, /^\/v2\/chunked\/blobs\/uploads\/[0-9a-f-]{36}$/);
    assert.equal(start.headers.get('range'), '0-0');

    const c1 = await fetch(u(location), {
      method: 'PATCH',
      body: data.subarray(0, 1000),
      headers: { 'Content-Range': '0-999', 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(c1.status, 202);
    assert.equal(c1.headers.get('range'), '0-999');

    const skipped = await fetch(u(location), {
      method: 'PATCH',
      body: data.subarray(2000),
      headers: { 'Content-Range': '2000-2999', 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(skipped.status, 416);
    assert.equal(skipped.headers.get('range'), '0-999');
    assert.equal(await errorCode(skipped), 'BLOB_UPLOAD_INVALID');

    const status = await fetch(u(location));
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-999');

    const c2 = await fetch(u(location), {
      method: 'PATCH',
      body: data.subarray(1000, 2000),
      headers: { 'Content-Range': '1000-1999', 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(c2.status, 202);
    const wrongDigest = sha256('nope');
    const bad = await fetch(u(`${location}?digest=${wrongDigest}`), { method: 'PUT', body: data.subarray(2000) });
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), 'DIGEST_INVALID');

    // The failed session is gone; redo the whole upload and finish with the last chunk in the PUT.
    const again = await fetch(u('/v2/chunked/blobs/uploads/'), { method: 'POST' });
    const loc2 = again.headers.get('location')!;
    await (await fetch(u(loc2), { method: 'PATCH', body: data.subarray(0, 2000) })).arrayBuffer();
    const done = await fetch(u(`${loc2}?digest=${digest}`), {
      method: 'PUT',
      body: data.subarray(2000),
      headers: { 'Content-Range': '2000-2999', 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(done.status, 201, await done.text());
    assert.equal(done.headers.get('location'), `/v2/chunked/blobs/${digest}`);
    const got = await fetch(u(`/v2/chunked/blobs/${digest}`));
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), data);

    const cancelled = await fetch(u('/v2/chunked/blobs/uploads/'), { method: 'POST' });
    const loc3 = cancelled.headers.get('location')!;
    assert.equal((await fetch(u(loc3), { method: 'DELETE' })).status, 204);
    const gone = await fetch(u(loc3));
    assert.equal(gone.status, 404);
    assert.equal(await errorCode(gone), 'BLOB_UPLOAD_UNKNOWN');
  });

  test('monolithic upload verifies digest and size; mount across repositories', async () => {
    const data = randomBytes(500);
    const wrong = await fetch(u(`/v2/mono/blobs/uploads/?digest=${sha256('other')}`), { method: 'POST', body: data });
    assert.equal(wrong.status, 400);
    assert.equal(await errorCode(wrong), 'DIGEST_INVALID');
    const digest = await pushBlob('mono', data);

    const mounted = await fetch(u(`/v2/elsewhere/blobs/uploads/?mount=${digest}&from=mono`), { method: 'POST' });
    assert.equal(mounted.status, 201);
    assert.equal(mounted.headers.get('location'), `/v2/elsewhere/blobs/${digest}`);
    assert.equal((await fetch(u(`/v2/elsewhere/blobs/${digest}`), { method: 'HEAD' })).status, 200);

    const unknown = await fetch(u(`/v2/elsewhere/blobs/uploads/?mount=${sha256('absent')}&from=mono`), { method: 'POST' });
    assert.equal(unknown.status, 202, 'a mount of an unknown blob falls back to an upload session');
    assert.ok(unknown.headers.get('location'));
  });

  test('manifests: put, get by tag and digest, HEAD, negotiation, limits and bad input', async () => {
    const img = await pushImage('apps/web', 'v1');
    assert.equal(img.res.headers.get('location'), `/v2/apps/web/manifests/${img.digest}`);
    for (const ref of ['v1', img.digest]) {
      const res = await fetch(u(`/v2/apps/web/manifests/${ref}`), { headers: { Accept: OCI_MANIFEST } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), OCI_MANIFEST);
      assert.equal(res.headers.get('docker-content-digest'), img.digest);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), img.manifest);
    }
    const head = await fetch(u('/v2/apps/web/manifests/v1'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(img.manifest.length));

    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: img.digest, size: img.manifest.length, platform: { os: 'linux', architecture: 'amd64' } }],
      }),
    );
    const putIndex = await fetch(u('/v2/apps/web/manifests/multi'), { method: 'PUT', body: index, headers: { 'Content-Type': OCI_INDEX } });
    assert.equal(putIndex.status, 201);
    const hidden = await fetch(u('/v2/apps/web/manifests/multi'), { headers: { Accept: OCI_MANIFEST } });
    assert.equal(hidden.status, 404, 'an index is not served to a client that cannot take one');
    assert.equal(await errorCode(hidden), 'MANIFEST_UNKNOWN');
    const shown = await fetch(u('/v2/apps/web/manifests/multi'), { headers: { Accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
    assert.equal(shown.status, 200);
    assert.equal(shown.headers.get('content-type'), OCI_INDEX);
    await shown.arrayBuffer();

    const referenced = await fetch(u(`/v2/apps/web/manifests/${img.digest}`), { method: 'DELETE' });
    assert.equal(referenced.status, 409, 'a manifest an index lists cannot be deleted under it');

    const missing = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('no such config'), size: 14 },
        layers: [],
      }),
    );
    const r1 = await fetch(u('/v2/apps/web/manifests/broken'), { method: 'PUT', body: missing, headers: { 'Content-Type': OCI_MANIFEST } });
    assert.equal(r1.status, 400);
    assert.equal(await errorCode(r1), 'MANIFEST_BLOB_UNKNOWN');

    const r2 = await fetch(u('/v2/apps/web/manifests/bad'), { method: 'PUT', body: '{"schemaVersion":2,', headers: { 'Content-Type': OCI_MANIFEST } });
    assert.equal(await errorCode(r2), 'MANIFEST_INVALID');

    const big = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, pad: 'x'.repeat(5000) }));
    const r3 = await fetch(u('/v2/apps/web/manifests/big'), { method: 'PUT', body: big, headers: { 'Content-Type': OCI_MANIFEST } });
    assert.equal(r3.status, 413);
    assert.equal(await errorCode(r3), 'SIZE_INVALID');

    const r4 = await fetch(u(`/v2/apps/web/manifests/${sha256('different')}`), { method: 'PUT', body: img.manifest, headers: { 'Content-Type': OCI_MANIFEST } });
    assert.equal(await errorCode(r4), 'DIGEST_INVALID');

    const del = await fetch(u('/v2/apps/web/manifests/multi'), { method: 'DELETE' });
    assert.equal(del.status, 202, 'deleting a tag');
    assert.equal((await fetch(u('/v2/apps/web/manifests/multi'))).status, 404);
  });

  test('tags list and catalog paginate with Link headers', async () => {
    for (const tag of ['c', 'a', 'b', 'd']) await pushImage('paged/repo', tag);
    const all = await fetch(u('/v2/paged/repo/tags/list'));
    assert.deepEqual(await all.json(), { name: 'paged/repo', tags: ['a', 'b', 'c', 'd'] });
    const p1 = await fetch(u('/v2/paged/repo/tags/list?n=2'));
    assert.deepEqual(((await p1.json()) as { tags: string[] }).tags, ['a', 'b']);
    assert.equal(p1.headers.get('link'), '</v2/paged/repo/tags/list?n=2&last=b>; rel="next"');
    const p2 = await fetch(u('/v2/paged/repo/tags/list?n=2&last=b'));
    assert.deepEqual(((await p2.json()) as { tags: string[] }).tags, ['c', 'd']);
    assert.equal(p2.headers.get('link'), null);
    const badN = await fetch(u('/v2/paged/repo/tags/list?n=abc'));
    assert.equal(badN.status, 400);
    await badN.arrayBuffer();

    const cat = await fetch(u('/v2/_catalog?n=1'));
    const body = (await cat.json()) as { repositories: string[] };
    assert.equal(body.repositories.length, 1);
    assert.match(cat.headers.get('link') ?? '', /^<\/v2\/_catalog\?n=1&last=[^>]+>; rel="next"$/);
    const unknownRepo = await fetch(u('/v2/never/pushed/tags/list'));
    assert.equal(unknownRepo.status, 404);
    assert.equal(await errorCode(unknownRepo), 'NAME_UNKNOWN');
  });

  test('referrers API lists manifests by subject, filtered by artifactType', async () => {
    const subject = await pushImage('signed/app', 'v1');
    const sig = await pushImage('signed/app', 'sig', {
      artifactType: 'application/vnd.example.signature',
      subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length },
    });
    assert.equal(sig.res.headers.get('oci-subject'), subject.digest);
    const res = await fetch(u(`/v2/signed/app/referrers/${subject.digest}`));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), OCI_INDEX);
    const idx = (await res.json()) as { manifests: Array<{ digest: string; artifactType: string }> };
    assert.deepEqual(idx.manifests.map((m) => [m.digest, m.artifactType]), [[sig.digest, 'application/vnd.example.signature']]);
    const filtered = await fetch(u(`/v2/signed/app/referrers/${subject.digest}?artifactType=application/other`));
    assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(((await filtered.json()) as { manifests: unknown[] }).manifests, []);
    const none = await fetch(u(`/v2/signed/app/referrers/${sha256('nobody')}`));
    assert.deepEqual(((await none.json()) as { manifests: unknown[] }).manifests, []);
  });

  test('referrers API per dist-spec 1.1: annotations, empty index for a known repo, pages with Link, bad digests, deleted referrers', async () => {
    const subject = await pushImage('refs/app', 'v1');
    const subjectDesc = { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length };
    // A known repository, nothing refers to the image yet: 200 and an empty index, not 404.
    const empty = await fetch(u(`/v2/refs/app/referrers/${subject.digest}`));
    assert.equal(empty.status, 200);
    assert.equal(empty.headers.get('content-type'), OCI_INDEX);
    assert.deepEqual(await empty.json(), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
    const pushed: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await pushImage('refs/app', `r${i}`, {
        artifactType: i % 2 === 0 ? 'application/vnd.example.sig' : 'application/vnd.example.sbom',
        subject: subjectDesc,
        annotations: { 'org.example.i': String(i) },
      });
      assert.equal(r.res.headers.get('oci-subject'), subject.digest);
      pushed.push(r.digest);
    }
    // Without artifactType in the manifest, the config's media type is the descriptor's artifactType.
    const plain = await pushImage('refs/app', 'plain', { subject: subjectDesc });
    const all = (await (await fetch(u(`/v2/refs/app/referrers/${subject.digest}`))).json()) as { manifests: Array<{ digest: string; mediaType: string; size: number; artifactType: string; annotations?: Record<string, string> }> };
    assert.equal(all.manifests.length, 6);
    const first = all.manifests.find((m) => m.digest === pushed[0])!;
    assert.equal(first.mediaType, OCI_MANIFEST);
    assert.equal(first.artifactType, 'application/vnd.example.sig');
    assert.deepEqual(first.annotations, { 'org.example.i': '0' });
    assert.equal(all.manifests.find((m) => m.digest === plain.digest)!.artifactType, 'application/vnd.oci.image.config.v1+json');

    // Pages: n=2 of the three signatures, each page linking the next with the filter kept.
    const seen: string[] = [];
    let next: string | undefined = `/v2/refs/app/referrers/${subject.digest}?artifactType=${encodeURIComponent('application/vnd.example.sig')}&n=2`;
    let pages = 0;
    while (next) {
      const res = await fetch(u(next));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('oci-filters-applied'), 'artifactType');
      const page = (await res.json()) as { manifests: Array<{ digest: string; artifactType: string }> };
      assert.ok(page.manifests.length <= 2);
      for (const m of page.manifests) {
        assert.equal(m.artifactType, 'application/vnd.example.sig');
        seen.push(m.digest);
      }
      const link = res.headers.get('link');
      next = link ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] : undefined;
      if (link) assert.ok(next, link);
      pages++;
    }
    assert.equal(pages, 2);
    assert.deepEqual(seen.sort(), [pushed[0], pushed[2], pushed[4]].sort());

    const bad = await fetch(u('/v2/refs/app/referrers/sha256:zz'));
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), 'DIGEST_INVALID');
    const badLast = await fetch(u(`/v2/refs/app/referrers/${subject.digest}?last=nope`));
    assert.equal(badLast.status, 400);
    assert.equal(await errorCode(badLast), 'DIGEST_INVALID');
    const badN = await fetch(u(`/v2/refs/app/referrers/${subject.digest}?n=-1`));
    assert.equal(badN.status, 400);
    assert.equal(await errorCode(badN), 'PAGINATION_NUMBER_INVALID');

    // A deleted referrer is no longer listed.
    assert.equal((await fetch(u(`/v2/refs/app/manifests/${pushed[1]}`), { method: 'DELETE' })).status, 202);
    const after = (await (await fetch(u(`/v2/refs/app/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`))).json()) as { manifests: Array<{ digest: string }> };
    assert.deepEqual(after.manifests.map((m) => m.digest), [pushed[3]]);
  });

  test('deletes: blob unlink and manifest delete', async () => {
    const img = await pushImage('to/delete', 'v1');
    assert.equal((await fetch(u(`/v2/to/delete/blobs/${img.layerDigest}`), { method: 'DELETE' })).status, 202);
    const gone = await fetch(u(`/v2/to/delete/blobs/${img.layerDigest}`));
    assert.equal(gone.status, 404);
    assert.equal(await errorCode(gone), 'BLOB_UNKNOWN');
    assert.equal((await fetch(u(`/v2/to/delete/manifests/${img.digest}`), { method: 'DELETE' })).status, 202);
    const m = await fetch(u('/v2/to/delete/manifests/v1'));
    assert.equal(await errorCode(m), 'MANIFEST_UNKNOWN');
    const again = await fetch(u(`/v2/to/delete/manifests/${img.digest}`), { method: 'DELETE' });
    assert.equal(again.status, 404);
    await again.arrayBuffer();
  });

  test('error codes for bad names, digests, uploads and methods', async () => {
    const cases: Array<[string, string, number, string]> = [
      ['GET', '/v2/UPPER/case/manifests/latest', 400, 'NAME_INVALID'],
      ['GET', '/v2/a//b/manifests/latest', 400, 'NAME_INVALID'],
      ['GET', `/v2/${'a'.repeat(300)}/tags/list`, 400, 'NAME_INVALID'],
      ['GET', '/v2/ok/blobs/sha256:zz', 400, 'DIGEST_INVALID'],
      ['GET', '/v2/ok/blobs/md5:d41d8cd98f00b204e9800998ecf8427e', 400, 'DIGEST_INVALID'],
      ['GET', `/v2/ok/blobs/${sha256('absent')}`, 404, 'BLOB_UNKNOWN'],
      ['GET', '/v2/nothing/here/manifests/latest', 404, 'NAME_UNKNOWN'],
      ['GET', '/v2/ok/manifests/bad:tag!', 400, 'DIGEST_INVALID'],
      ['GET', '/v2/ok/manifests/-bad', 400, 'TAG_INVALID'],
      ['GET', '/v2/ok/blobs/uploads/00000000-0000-0000-0000-000000000000', 404, 'BLOB_UPLOAD_UNKNOWN'],
      ['PATCH', '/v2/ok/blobs/uploads/not-a-uuid', 404, 'BLOB_UPLOAD_UNKNOWN'],
      ['POST', '/v2/ok/manifests/latest', 405, 'UNSUPPORTED'],
      ['GET', '/v3/', 404, 'UNSUPPORTED'],
    ];
    for (const [method, path, status, code] of cases) {
      const res = await rawRequest(sat.url, method, path);
      assert.equal(res.status, status, `${method} ${path}: ${res.body}`);
      assert.equal((JSON.parse(res.body) as { errors: Array<{ code: string }> }).errors[0]!.code, code, `${method} ${path}`);
    }
  });

  test('path traversal attempts never reach outside the data directory', async () => {
    const before = await readdir(sat.dataDir);
    const attempts: Array<[string, string]> = [
      ['GET', '/v2/../../etc/passwd'],
      ['GET', '/v2/a/../../../etc/blobs/sha256:aa'],
      ['GET', '/v2/a/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd'],
      ['GET', '/v2/%2e%2e/%2e%2e/blobs/uploads/x'],
      ['PUT', '/v2/a/blobs/uploads/..%2F..%2Findex%2Fdata.mdb?digest=sha256:' + '0'.repeat(64)],
      ['DELETE', '/v2/a/blobs/uploads/../../index'],
      ['PUT', '/v2/..%2f..%2ftmp/manifests/latest'],
    ];
    for (const [method, path] of attempts) {
      const res = await rawRequest(sat.url, method, path);
      assert.ok(res.status >= 400 && res.status < 500, `${method} ${path} -> ${res.status} ${res.body}`);
    }
    assert.deepEqual(await readdir(sat.dataDir), before);
    assert.ok((await readdir(join(sat.dataDir, 'index'))).includes('data.mdb'));
  });
});
