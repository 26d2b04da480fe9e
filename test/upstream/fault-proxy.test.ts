import assert from 'node:assert/strict';
import test from 'node:test';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { UpstreamErrorCode } from '../../src/upstream/index.ts';
import { isSatelliteError } from '../../src/lib/errors.ts';
import { bigLayer, pushFixtures, readAll, readUntilError, rejectsWithCode, sha256, upstreamClient } from './setup.ts';

test('through a faulty link: cut bodies resume with Range, flipped bytes change the hash', async (t) => {
  const registry = await startDockerRegistry(t);
  const fx = await pushFixtures(t, registry);
  const layer = await bigLayer(fx);
  const CUT = 256 * 1024;
  const proxy = await startFaultProxy(t, { target: registry.host, cutEveryBytes: CUT });

  await t.test('a cut fails the body stream; fetchBlob from the offset continues', async () => {
    const { client, metered } = upstreamClient(t, { url: proxy.url });
    const pieces: Buffer[] = [];
    let offset = 0;
    for (let attempt = 0; offset < layer.size; attempt++) {
      assert.ok(attempt < 20, 'too many attempts');
      const blob = await client.fetchBlob(fx.repo, layer.digest, { offset });
      assert.equal(blob.status, offset === 0 ? 200 : 206);
      assert.equal(blob.start, offset);
      assert.equal(blob.total, layer.size);
      const { data, error } = await readUntilError(blob.body);
      if (offset + data.length < layer.size) {
        assert.ok(isSatelliteError(error, UpstreamErrorCode.unreachable), `mid-body failure: ${String(error)}`);
        assert.equal((error.detail as { bytes?: number }).bytes, data.length);
        assert.match(error.message, new RegExp(`body failed after ${data.length} bytes`));
        assert.ok(data.length < CUT);
      } else {
        assert.equal(error, undefined);
      }
      pieces.push(data);
      offset += data.length;
    }
    const whole = Buffer.concat(pieces);
    assert.equal(sha256(whole), layer.digest);
    assert.ok(pieces.length >= Math.ceil(layer.size / CUT), `${pieces.length} pieces`);
    assert.equal(proxy.cuts(), pieces.length - 1);
    assert.equal(metered(), layer.size, 'the meter counts body bytes exactly once');
    assert.ok(proxy.bytesFromTarget() > layer.size, 'headers and bodies went through the proxy');
  });

  await t.test('a flipped byte arrives as a different hash', async () => {
    proxy.setCutEveryBytes(undefined);
    proxy.setFlipByteAt(64 * 1024);
    const { client } = upstreamClient(t, { url: proxy.url });
    const blob = await client.fetchBlob(fx.repo, layer.digest);
    const data = await readAll(blob.body);
    assert.equal(data.length, layer.size);
    assert.notEqual(sha256(data), layer.digest);
    const differing: number[] = [];
    for (let i = 0; i < data.length; i++) if (data[i] !== layer.bytes[i]) differing.push(i);
    assert.equal(differing.length, 1);
    assert.ok(differing[0]! < 64 * 1024 && differing[0]! > 60 * 1024, `flipped body byte ${differing[0]}`);
    proxy.setFlipByteAt(undefined);
  });

  await t.test('a paused link is UPSTREAM_UNREACHABLE until resumed', async () => {
    const { client } = upstreamClient(t, { url: proxy.url, retries: 0 });
    await client.ping();
    proxy.pause();
    const err = await rejectsWithCode(client.ping(), UpstreamErrorCode.unreachable);
    assert.match(err.message, /GET \/v2\//);
    proxy.resume();
    await client.ping();
  });

  await t.test('a blackholed link times out on the response headers', async () => {
    const { client } = upstreamClient(t, { url: proxy.url, headersTimeoutMs: 400, retries: 3 });
    proxy.pause('blackhole');
    const started = Date.now();
    const err = await rejectsWithCode(client.getManifest(fx.repo, 'v1'), UpstreamErrorCode.unreachable);
    const elapsed = Date.now() - started;
    assert.equal((err.detail as { errno?: string }).errno, 'UND_ERR_HEADERS_TIMEOUT');
    assert.ok(elapsed >= 350 && elapsed < 2500, `failed after ${elapsed} ms (timeouts are not retried)`);
    proxy.resume();
    assert.equal((await client.getManifest(fx.repo, 'v1')).digest, fx.image.manifestDigest);
  });
});
