import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { layoutDigests, MiB } from '../proxy/helpers.ts';
import { run, startTlsOrigin } from './helpers.ts';

const UPSTREAM = 'upstream.test:5000';

/** Blob GETs the upstream's access log shows. */
const blobGets = (logs: string) => logs.split('\n').filter((l) => /"GET \/v2\/[^"]*\/blobs\/sha256:/.test(l)).length;

test('skopeo with HTTPS_PROXY pulls a listed registry from the satellite; other hosts are tunnelled untouched', async (t) => {
  const upstream = await startDockerRegistry(t, { accessLog: true });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'https-proxy', layerSizes: [2 * MiB, 512 * 1024] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/app:v1`);
  const origin = await startTlsOrigin(t, ['origin.test', '127.0.0.1']);

  const sat = await startSatellite(t, {
    config: {
      proxy: { enabled: true, mirrors: [{ namespace: UPSTREAM, upstream: { url: upstream.url } }] },
      httpsProxy: {
        enabled: true,
        listen: { host: '127.0.0.1', port: 0 },
        intercept: [UPSTREAM],
        // origin.test is only known to the proxy; loopback literals stay refused (tunnelLoopback false).
        hosts: { [`origin.test:${origin.port}`]: `127.0.0.1:${origin.port}` },
      },
    },
  });
  const line = await sat.waitForLog(/"msg":"https proxy listening"/);
  const proxyUrl = `http://127.0.0.1:${(JSON.parse(line.input) as { port: number }).port}`;

  const caDir = join(sat.dataDir, 'site-ca');
  assert.equal((await stat(join(caDir, 'ca.key'))).mode & 0o777, 0o600, 'CA key is 0600');
  assert.equal((await stat(caDir)).mode & 0o777, 0o700);

  // skopeo trusts the site CA through a cert dir (containers/image reads *.crt there, and takes
  // *.key as a client key: so a copy of the certificate alone, as docker's certs.d gets it).
  const certDir = await makeTempDir(t, 'hs-certs-');
  await copyFile(join(caDir, 'ca.crt'), join(certDir, 'ca.crt'));
  const env = {
    HTTPS_PROXY: proxyUrl,
    NO_PROXY: '',
    CONTAINERS_REGISTRIES_CONF: '/dev/null',
    REGISTRY_AUTH_FILE: '/nonexistent/harbor-satellite-test/auth.json',
  };
  const pull = (dest: string, extra: string[] = ['--src-cert-dir', certDir]) =>
    run('skopeo', ['--insecure-policy', 'copy', ...extra, `docker://${UPSTREAM}/app:v1`, `oci:${dest}:v1`], env);

  const first = await makeTempDir(t, 'hs-pull-');
  const r1 = await pull(first);
  assert.equal(r1.code, 0, r1.stderr);
  const a = await layoutDigests(first);
  assert.equal(a.manifest, img.manifestDigest);
  assert.deepEqual(a.blobs, [img.configDigest, ...img.layerDigests]);
  assert.match(sat.logs(), /"path":"\/v2\/app\/manifests\/v1\?ns=upstream.test%3A5000"/, 'the satellite served the request, with ?ns= from the CONNECT');
  const coldGets = blobGets(upstream.logs());
  assert.ok(coldGets >= 3, `cold pull fetched the blobs upstream (${coldGets})`);

  // Warm: the satellite has every blob, the upstream sees no blob GET.
  const second = await makeTempDir(t, 'hs-pull-');
  const r2 = await pull(second);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(await layoutDigests(second), a);
  assert.equal(blobGets(upstream.logs()), coldGets, 'no blob GET reached the upstream on the warm pull');

  // Upstream gone: still served from the satellite.
  await upstream.stop();
  const third = await makeTempDir(t, 'hs-pull-');
  const r3 = await pull(third);
  assert.equal(r3.code, 0, r3.stderr);
  assert.deepEqual(await layoutDigests(third), a);

  // A client that does not trust the site CA fails cleanly on the certificate.
  const r4 = await pull(await makeTempDir(t, 'hs-pull-'), []);
  assert.notEqual(r4.code, 0);
  assert.match(r4.stderr, /x509|certificate/i);

  // A host not listed is tunnelled: the client sees the origin's own certificate (its CA verifies it).
  const c1 = await run('curl', ['-sS', '--max-time', '20', '--proxy', proxyUrl, '--cacert', origin.caFile, '-w', '%{http_code}', `https://origin.test:${origin.port}/`]);
  assert.equal(c1.code, 0, c1.stderr);
  assert.equal(c1.stdout, 'origin says hi\n200');
  // With the site CA only, the origin's certificate is not trusted: nothing was re-signed.
  const c2 = await run('curl', ['-sS', '--max-time', '20', '--proxy', proxyUrl, '--cacert', join(caDir, 'ca.crt'), `https://origin.test:${origin.port}/`]);
  assert.equal(c2.code, 60, `curl exit ${c2.code}: ${c2.stderr}`);
  // A loopback target not named in httpsProxy.hosts is refused (the satellite's own private ports).
  const c3 = await run('curl', ['-sS', '--max-time', '20', '--proxy', proxyUrl, '--cacert', origin.caFile, `https://127.0.0.1:${origin.port}/`]);
  assert.notEqual(c3.code, 0);
  assert.match(c3.stderr, /403/);

  const status = (await (await fetch(`${sat.url}/_satellite/status`)).json()) as { httpsProxy: { intercepted: number; tunnelled: number; refused: number } };
  assert.ok(status.httpsProxy.intercepted >= 4, `intercepted ${status.httpsProxy.intercepted}`);
  assert.equal(status.httpsProxy.tunnelled, 2);
  assert.equal(status.httpsProxy.refused, 1);
});
