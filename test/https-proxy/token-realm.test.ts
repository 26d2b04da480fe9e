import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeServerCert } from '../helpers/test-ca.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { startContainerd } from '../helpers/containerd.ts';
import { defer, type Teardown } from '../helpers/cleanup.ts';
import { startTokenIssuer, type TokenIssuerOptions } from '../helpers/token-issuer.ts';
import { layoutDigests } from '../proxy/helpers.ts';
import { proxiedSkopeo, run } from './helpers.ts';

const UPSTREAM = 'upstream.test:5000';
const USER = 'device-a';
const PASSWORD = 'Secret-of-device-A-42';

/**
 * A Harbor-shaped upstream on one host:port over TLS (private test CA): `/service/token` goes to
 * the test token issuer's `/token`, everything else to docker-registry (plain HTTP behind it),
 * whose token realm is that same host's `/service/token`. A loopback front, like Harbor's nginx.
 */
async function harborLike(t: Teardown, repo = 'private/tok', issuerOpts: TokenIssuerOptions = { refuseAnonymous: true }) {
  const issuer = await startTokenIssuer(t, { users: { [USER]: PASSWORD }, ...issuerOpts });
  const cert = await makeServerCert(t, ['127.0.0.1']);
  let registryPort = 0;
  const front = createHttpsServer({ cert: await readFile(cert.certFile), key: await readFile(cert.keyFile) }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://front.invalid');
    const toIssuer = url.pathname === '/service/token';
    const upstream = httpRequest(
      { host: '127.0.0.1', port: toIssuer ? new URL(issuer.url).port : registryPort, method: req.method, path: toIssuer ? `/token${url.search}` : req.url, headers: { ...req.headers, 'x-forwarded-proto': 'https' } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  const stopFront = () => {
    front.closeAllConnections();
    front.close();
  };
  defer(t, stopFront);
  const frontPort = (front.address() as AddressInfo).port;
  const frontUrl = `https://127.0.0.1:${frontPort}`;
  const registry = await startDockerRegistry(t, { token: { ...issuer, realm: `${frontUrl}/service/token` } });
  registryPort = registry.port;
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'token-realm-relay', layerSizes: [300 * 1024, 64 * 1024] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://127.0.0.1:${frontPort}/${repo}:v1`, { destCreds: `${USER}:${PASSWORD}` });
  const stop = async () => {
    stopFront();
    await registry.stop();
    await issuer.stop();
  };
  return { issuer, cert, frontUrl, img, stop };
}

test("token realm on the intercepted host (Harbor's /service/token): skopeo and ctr get a token through the satellite; never cached, never logged", async (t) => {
  const { issuer, cert, frontUrl, img, stop } = await harborLike(t);
  const sat = await startSatellite(t, {
    config: {
      log: { level: 'debug' },
      upstream: { caFile: cert.caFile },
      proxy: { enabled: true, mirrors: [{ namespace: UPSTREAM, upstream: { url: frontUrl } }] },
      httpsProxy: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, intercept: [UPSTREAM] },
    },
  });
  const proxyPort = (JSON.parse((await sat.waitForLog(/"msg":"https proxy listening"/)).input) as { port: number }).port;
  const proxyUrl = `http://127.0.0.1:${proxyPort}`;
  const siteCa = join(sat.dataDir, 'site-ca', 'ca.crt');
  const curl = (path: string, extra: string[] = []) =>
    run('curl', ['-sS', '--max-time', '20', '--proxy', proxyUrl, '--cacert', siteCa, '-D', '-', ...extra, `https://${UPSTREAM}${path}`]);
  const realm = `https://${UPSTREAM}/service/token`;

  // GET /v2/ without credentials: the upstream's bearer challenge, its realm named on the intercepted host.
  const base = await curl('/v2/', ['-o', '/dev/null']);
  assert.match(base.stdout, /^HTTP\/1\.1 401/m, base.stdout);
  assert.ok(base.stdout.toLowerCase().includes(`www-authenticate: bearer realm="${realm}",service="${issuer.service}"`), base.stdout);

  // skopeo through HTTPS_PROXY with the device's credentials: token from the realm via the satellite.
  const pull = await proxiedSkopeo(t, proxyUrl, siteCa, `docker://${UPSTREAM}/private/tok:v1`);
  const before = issuer.log().length;
  const a = await pull(`${USER}:${PASSWORD}`);
  assert.equal(a.code, 0, a.stderr);
  const got = await layoutDigests(a.dest);
  assert.equal(got.manifest, img.manifestDigest);
  assert.deepEqual(got.blobs, [img.configDigest, ...img.layerDigests]);
  const granted = issuer.log().slice(before).filter((r) => r.user === USER && r.status === 200 && r.scopes.includes('repository:private/tok:pull'));
  assert.ok(granted.length >= 1, `the device's token request reached the issuer with its credentials: ${JSON.stringify(issuer.log().slice(before))}`);

  // Wrong credentials: the realm refuses them (401), so does skopeo's pull.
  const n0 = issuer.log().length;
  const wrong = await pull(`${USER}:wrong-password`);
  assert.notEqual(wrong.code, 0, 'wrong credentials are refused');
  assert.ok(issuer.log().slice(n0).some((r) => r.status === 401), 'refused by the realm');
  const none = await pull(undefined);
  assert.notEqual(none.code, 0, 'no credentials: refused');

  // The realm's answer is never cached: device A gets a token, device B (no credentials) right after gets the realm's 401.
  const query = `?service=${issuer.service}&scope=repository:private/tok:pull`;
  const n1 = issuer.requests();
  const tokenA = await curl(`/service/token${query}`, ['-u', `${USER}:${PASSWORD}`]);
  assert.match(tokenA.stdout, /^HTTP\/1\.1 200/m, tokenA.stdout);
  assert.match(tokenA.stdout, /^cache-control: no-store/im);
  const token = (JSON.parse(tokenA.stdout.slice(tokenA.stdout.lastIndexOf('\r\n\r\n') + 4)) as { token: string }).token;
  assert.match(token, /^eyJ/);
  const tokenB = await curl(`/service/token${query}`);
  assert.match(tokenB.stdout, /^HTTP\/1\.1 401/m, tokenB.stdout);
  assert.ok(!tokenB.stdout.includes(token), "B never sees A's token");
  assert.match(tokenB.stdout, /^www-authenticate: Basic realm="test token issuer"/im, "the realm's own answer");
  assert.equal(issuer.requests() - n1, 2, 'each token request went to the realm');
  assert.equal(issuer.log().at(-1)!.user, undefined, "B's request carried no credentials of A's");
  // A's token reads the image through the satellite; it is A's, obtained the normal way.
  const withToken = await curl('/v2/private/tok/manifests/v1', ['-o', '/dev/null', '-H', `Authorization: Bearer ${token}`, '-H', 'Accept: application/vnd.oci.image.manifest.v1+json']);
  assert.match(withToken.stdout, /^HTTP\/1\.1 200/m, withToken.stdout);

  // Only the realm's exact path, GET only: nothing else on the host reaches the issuer.
  const n2 = issuer.requests();
  assert.match((await curl(`/service/token/x${query}`, ['-o', '/dev/null', '-u', `${USER}:${PASSWORD}`])).stdout, /^HTTP\/1\.1 404/m);
  assert.match((await curl('/service/other', ['-o', '/dev/null'])).stdout, /^HTTP\/1\.1 404/m);
  const post = await curl('/service/token', ['-o', '/dev/null', '-u', `${USER}:${PASSWORD}`, '--data', `grant_type=password&username=${USER}&password=${PASSWORD}`]);
  assert.match(post.stdout, /^HTTP\/1\.1 405/m, 'POST (OAuth) is refused: clients fall back to GET');
  assert.equal(issuer.requests(), n2, 'none of these reached the realm');

  // containerd (ctr --user through HTTPS_PROXY): POST to the realm gets 405, then GET through the satellite.
  const hostsDir = await makeTempDir(t, 'hs-certsd-');
  await mkdir(join(hostsDir, UPSTREAM));
  await copyFile(siteCa, join(hostsDir, UPSTREAM, 'ca.crt'));
  const containerd = await startContainerd(t);
  const ctrPull = (user: string[]) =>
    run('ctr', ['--address', containerd.address, 'images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', containerd.snapshotter, ...user, `${UPSTREAM}/private/tok:v1`], {
      HTTPS_PROXY: proxyUrl,
      NO_PROXY: 'localhost,127.0.0.1,::1',
    });
  const n3 = issuer.log().length;
  const c = await ctrPull(['--user', `${USER}:${PASSWORD}`]);
  assert.equal(c.code, 0, c.stdout + c.stderr);
  const ls = await run('ctr', ['--address', containerd.address, 'images', 'ls']);
  assert.match(ls.stdout, new RegExp(`${UPSTREAM}/private/tok:v1\\s+\\S+\\s+${img.manifestDigest}`));
  assert.ok(issuer.log().slice(n3).some((r) => r.user === USER && r.status === 200), 'ctr got its token from the realm through the satellite');
  await run('ctr', ['--address', containerd.address, 'images', 'rm', '--sync', `${UPSTREAM}/private/tok:v1`]);
  await run('ctr', ['--address', containerd.address, 'content', 'prune', 'references']);
  const cw = await ctrPull(['--user', `${USER}:wrong-password`]);
  assert.notEqual(cw.code, 0, 'ctr with wrong credentials is refused, though the image is cached');

  const status = (await (await fetch(`${sat.url}/_satellite/status`)).json()) as { proxy: { tokenRelays: number } };
  assert.ok(status.proxy.tokenRelays >= 5, `tokenRelays ${status.proxy.tokenRelays}`);

  // Upstream down: the placeholder token the satellite hands out grants nothing in the restricted repository.
  await stop();
  const placeholder = await curl(`/service/token${query}`, ['-u', `${USER}:${PASSWORD}`]);
  assert.match(placeholder.stdout, /^HTTP\/1\.1 200/m, placeholder.stdout);
  const offlineToken = (JSON.parse(placeholder.stdout.slice(placeholder.stdout.lastIndexOf('\r\n\r\n') + 4)) as { token: string }).token;
  const refused = await curl('/v2/private/tok/manifests/v1', ['-o', '/dev/null', '-H', `Authorization: Bearer ${offlineToken}`]);
  assert.match(refused.stdout, /^HTTP\/1\.1 401/m, refused.stdout);
  const offlinePull = await pull(`${USER}:${PASSWORD}`);
  assert.notEqual(offlinePull.code, 0, 'a restricted repository needs credentials the upstream confirmed');

  // Neither credentials, user names nor tokens are logged (debug level throughout).
  const logs = sat.logs();
  assert.ok(!logs.includes(PASSWORD), 'the password is not in the log');
  assert.ok(!logs.includes(Buffer.from(`${USER}:${PASSWORD}`).toString('base64')), 'the Authorization value is not in the log');
  assert.ok(!logs.includes(USER), 'the user name (account=) is not in the log');
  assert.ok(!logs.includes(token.slice(0, 40)), 'the token is not in the log');
  assert.match(logs, /"path":"\/service\/token"/, 'the relayed request is logged by its path only');
});

test('upstream down: a device without credentials still pulls the cached image of a public repository (placeholder token, grants nothing more)', async (t) => {
  // Anonymous pulls allowed at the issuer (a public project), the private repository as before.
  const { issuer, cert, frontUrl, img, stop } = await harborLike(t, 'public/app', { anonymousActions: ['pull'] });
  const sat = await startSatellite(t, {
    config: {
      upstream: { caFile: cert.caFile },
      proxy: { enabled: true, mirrors: [{ namespace: UPSTREAM, upstream: { url: frontUrl } }] },
      httpsProxy: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, intercept: [UPSTREAM] },
    },
  });
  const proxyPort = (JSON.parse((await sat.waitForLog(/"msg":"https proxy listening"/)).input) as { port: number }).port;
  const pull = await proxiedSkopeo(t, `http://127.0.0.1:${proxyPort}`, join(sat.dataDir, 'site-ca', 'ca.crt'), `docker://${UPSTREAM}/public/app:v1`);
  const first = await pull();
  assert.equal(first.code, 0, first.stderr);
  assert.equal((await layoutDigests(first.dest)).manifest, img.manifestDigest);
  assert.ok(issuer.log().some((r) => r.user === undefined && r.status === 200 && r.access.length > 0), 'an anonymous token came from the realm through the satellite');

  await stop();
  const offline = await pull();
  assert.equal(offline.code, 0, offline.stderr);
  assert.deepEqual(await layoutDigests(offline.dest), await layoutDigests(first.dest));
  assert.match(sat.logs(), /"msg":"token realm unreachable: placeholder token for a device/);
});
