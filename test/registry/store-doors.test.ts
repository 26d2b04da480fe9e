// Issue 10 items 4 and 8 (registry half), against the real satellite process: bad pagination
// parameters answer 400 and leak no LMDB read transaction; a pushed manifest may reference only
// blobs of its own repository, with their true sizes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireBinary } from '../helpers/bin.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { makeTempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const USER = 'edge';
const PASS = 'push-s3cret';
const CREDS = `${USER}:${PASS}`;
const AUTH = { Authorization: `Basic ${Buffer.from(CREDS).toString('base64')}` };

async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { errors: Array<{ code: string }> };
  return body.errors[0]!.code;
}

describe('registry doors in the store (real satellite process)', () => {
  let sat: Satellite;
  let layoutDir: string;
  const u = (p: string) => `${sat.url}${p}`;
  const teardown: Array<() => unknown> = [];
  after(async () => {
    for (const fn of teardown.reverse()) await fn();
  });
  before(async () => {
    const t = { after: (fn: () => unknown) => void teardown.push(fn) };
    const dir = await makeTempDir(t, 'hs-doors-');
    const htpasswd = join(dir, 'htpasswd');
    // Authenticated pushes work whatever the anonymous-push default is.
    const out = await run(requireBinary('htpasswd'), ['-Bbn', '-C', '4', USER, PASS]);
    await writeFile(htpasswd, out.stdout);
    sat = await startSatellite(t, { config: { registry: { auth: { htpasswd, realm: 'doors' } } } });
    layoutDir = join(dir, 'layout');
  });

  async function pushBlob(repo: string, data: Buffer): Promise<string> {
    const digest = sha256(data);
    const res = await fetch(u(`/v2/${repo}/blobs/uploads/?digest=${digest}`), {
      method: 'POST',
      body: data,
      headers: { ...AUTH, 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(res.status, 201, await res.text());
    return digest;
  }

  function manifestOf(config: { digest: string; size: number }, layers: Array<{ digest: string; size: number }>): Buffer {
    return Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
      }),
    );
  }

  function putManifest(repo: string, ref: string, body: Buffer): Promise<Response> {
    return fetch(u(`/v2/${repo}/manifests/${ref}`), { method: 'PUT', body, headers: { ...AUTH, 'Content-Type': OCI_MANIFEST } });
  }

  async function pushImage(repo: string, tag: string) {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed: randomBytes(4).toString('hex') }));
    const layer = randomBytes(1024);
    const c = { digest: await pushBlob(repo, config), size: config.length };
    const l = { digest: await pushBlob(repo, layer), size: layer.length };
    const manifest = manifestOf(c, [l]);
    const res = await putManifest(repo, tag, manifest);
    assert.equal(res.status, 201, await res.text());
    return { manifest, config: c, layer: l };
  }

  async function indexSize(): Promise<number> {
    return (await stat(join(sat.dataDir, 'index', 'data.mdb'))).size;
  }

  async function rewriteTags(repo: string, manifest: Buffer, writes: number): Promise<void> {
    for (let i = 0; i < writes; i++) {
      const res = await putManifest(repo, `t${i % 10}`, manifest);
      assert.equal(res.status, 201);
      await res.arrayBuffer();
    }
  }

  test('bad n/last answer 400 with a spec code; after them, 300 manifest writes leave data.mdb the same size', async () => {
    const { manifest } = await pushImage('leak/app', 'v1');
    // Warm up: the index reaches the size that rewriting these tags needs (freed pages get reused).
    await rewriteTags('leak/app', manifest, 300);
    const before = await indexSize();

    const long = 'a'.repeat(4500);
    const cases: Array<[string, string]> = [
      [`/v2/_catalog?last=${long}`, 'NAME_INVALID'],
      [`/v2/_catalog?n=2&last=${long}`, 'NAME_INVALID'],
      ['/v2/_catalog?last=Not/A/Name', 'NAME_INVALID'],
      [`/v2/leak/app/tags/list?last=${long}`, 'TAG_INVALID'],
      ['/v2/leak/app/tags/list?last=-bad', 'TAG_INVALID'],
      ['/v2/leak/app/tags/list?n=x', 'PAGINATION_NUMBER_INVALID'],
      [`/v2/_catalog?n=${'9'.repeat(40)}`, 'PAGINATION_NUMBER_INVALID'],
    ];
    for (const [path, code] of cases) {
      const res = await fetch(u(path), { headers: AUTH });
      assert.equal(res.status, 400, path.slice(0, 60));
      assert.equal(await errorCode(res), code, path.slice(0, 60));
    }
    // Valid pagination still works.
    const page = await fetch(u('/v2/leak/app/tags/list?n=2&last=t1'), { headers: AUTH });
    assert.deepEqual(((await page.json()) as { tags: string[] }).tags, ['t2', 't3']);

    await rewriteTags('leak/app', manifest, 300);
    const afterWrites = await indexSize();
    // A leaked read transaction pins every page it saw: each write then takes fresh pages
    // (~16 KB each, ~4.8 MB for 300 writes). Without one the file does not grow.
    assert.equal(afterWrites, before, `data.mdb grew from ${before} to ${afterWrites} bytes`);
  });

  test('a manifest whose descriptor size differs from the stored blob is 400 SIZE_INVALID', async () => {
    const { config, layer } = await pushImage('sizes/app', 'v1');
    for (const wrong of [{ ...layer, size: layer.size + 1 }, { ...layer, size: layer.size - 1 }]) {
      const res = await putManifest('sizes/app', 'wrong', manifestOf(config, [wrong]));
      assert.equal(res.status, 400);
      assert.equal(await errorCode(res), 'SIZE_INVALID');
    }
    const badConfig = await putManifest('sizes/app', 'wrong', manifestOf({ ...config, size: 1 }, [layer]));
    assert.equal(badConfig.status, 400);
    assert.equal(await errorCode(badConfig), 'SIZE_INVALID');
    const tag = await fetch(u('/v2/sizes/app/manifests/wrong'), { headers: AUTH });
    assert.equal(tag.status, 404, 'a rejected manifest leaves no tag');
  });

  test('a manifest cannot reference (nor a mount take) a blob that only another repository holds', async () => {
    const secret = await pushImage('team-a/private', 'v1');
    const layerUrl = u(`/v2/team-b/app/blobs/${secret.layer.digest}`);
    assert.equal((await fetch(layerUrl, { method: 'HEAD', headers: AUTH })).status, 404);

    const res = await putManifest('team-b/app', 'steal', secret.manifest);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'MANIFEST_BLOB_UNKNOWN');
    const got = await fetch(layerUrl, { headers: AUTH });
    assert.equal(got.status, 404, 'the other repository\'s blob stays unreadable here');
    assert.equal(await errorCode(got), 'BLOB_UNKNOWN');

    // Mount without `from`, or from a repository that does not hold the blob: an upload session, no link.
    for (const query of [`mount=${secret.layer.digest}`, `mount=${secret.layer.digest}&from=team-b/other`]) {
      const m = await fetch(u(`/v2/team-b/app/blobs/uploads/?${query}`), { method: 'POST', headers: AUTH });
      assert.equal(m.status, 202, query);
      await m.arrayBuffer();
      assert.equal((await fetch(layerUrl, { method: 'HEAD', headers: AUTH })).status, 404, query);
    }
    // A mount from the repository that holds it links it (dist-spec end-11), and then the manifest goes in.
    for (const d of [secret.config.digest, secret.layer.digest]) {
      const m = await fetch(u(`/v2/team-b/app/blobs/uploads/?mount=${d}&from=team-a/private`), { method: 'POST', headers: AUTH });
      assert.equal(m.status, 201);
      await m.arrayBuffer();
    }
    const ok = await putManifest('team-b/app', 'shared', secret.manifest);
    assert.equal(ok.status, 201, await ok.text());
    assert.equal((await fetch(layerUrl, { method: 'HEAD', headers: AUTH })).status, 200);
  });

  test('skopeo pushes the same image to two repositories and copies between them (mount)', async () => {
    const image = await makeImage(layoutDir, { tag: 'v1', seed: 'doors-skopeo', layerSizes: [40_000, 9_000] });
    for (const repo of ['sk/one', 'sk/two']) {
      await skopeoCopy(`oci:${layoutDir}:v1`, `docker://${sat.host}/${repo}:v1`, { destCreds: CREDS });
    }
    // Same registry: skopeo asks to mount from sk/one.
    await skopeoCopy(`docker://${sat.host}/sk/one:v1`, `docker://${sat.host}/sk/three:v1`, { srcCreds: CREDS, destCreds: CREDS });
    for (const repo of ['sk/one', 'sk/two', 'sk/three']) {
      const raw = await skopeoInspect(`docker://${sat.host}/${repo}:v1`, { raw: true, creds: CREDS });
      assert.equal(sha256(raw), image.manifestDigest, repo);
      for (const d of [...image.layerDigests, image.configDigest]) {
        const res = await fetch(u(`/v2/${repo}/blobs/${d}`), { headers: AUTH });
        assert.equal(res.status, 200, `${repo} ${d}`);
        assert.equal(sha256(Buffer.from(await res.arrayBuffer())), d);
      }
    }
  });
});
