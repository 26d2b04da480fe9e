import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deepMerge, startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeServerCert } from '../helpers/test-ca.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { layoutDigests, MiB } from '../proxy/helpers.ts';
import { proxiedSkopeo, run } from './helpers.ts';
import { startContainerd } from '../helpers/containerd.ts';
import type { Teardown } from '../helpers/cleanup.ts';
import { startTokenIssuer } from '../helpers/token-issuer.ts';

const UPSTREAM = 'upstream.test:5000';
const USER = 'device-a';
const PASSWORD = 'Secret-of-device-A-42';
const PEER_TOKEN = 'peer-token-abcdefghijklmnop';

/**
 * docker-registry over HTTPS (a private test CA) with htpasswd auth, holding `repo`:v1 pushed with
 * the device's credentials: every repository is private, and the satellite has no credentials for it.
 */
async function privateUpstream(t: Teardown, repo: string, seed: string, layerSizes: number[], accessLog = false) {
  const cert = await makeServerCert(t, ['127.0.0.1']);
  const authDir = await makeTempDir(t, 'hs-htpasswd-');
  const htpasswdFile = join(authDir, 'htpasswd');
  await writeFile(htpasswdFile, (await run('htpasswd', ['-Bbn', USER, PASSWORD])).stdout);
  const upstream = await startDockerRegistry(t, { tls: { certificate: cert.certFile, key: cert.keyFile }, htpasswdFile, accessLog });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed, layerSizes });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/${repo}:v1`, { destCreds: `${USER}:${PASSWORD}` });
  return { cert, htpasswdFile, upstream, img };
}


/** A satellite with no upstream credentials, intercepting UPSTREAM (a mirror of `upstreamUrl`, TLS verified with caFile). */
async function proxySatellite(t: Teardown, upstreamUrl: string, caFile: string, extra: Record<string, unknown> = {}) {
  const base = {
    upstream: { caFile },
    proxy: { enabled: true, mirrors: [{ namespace: UPSTREAM, upstream: { url: upstreamUrl } }] },
    httpsProxy: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, intercept: [UPSTREAM] },
  };
  const sat = await startSatellite(t, { config: deepMerge(base, extra) });
  const proxyPort = (JSON.parse((await sat.waitForLog(/"msg":"https proxy listening"/)).input) as { port: number }).port;
  return { sat, proxyPort };
}
test("a device's own credentials fetch a repository the satellite cannot read (TLS upstream, private CA); cached content goes only to requests the upstream authorises", async (t) => {
  // The upstream: docker-registry over HTTPS with a private test CA, htpasswd auth (every repository private).
  const { cert, upstream, img } = await privateUpstream(t, 'private/app', 'device-credentials', [1 * MiB, 256 * 1024], true);

  // The satellite has no credentials for it; it verifies the upstream's certificate with upstream.caFile.
  const sat = await startSatellite(t, {
    config: {
      log: { level: 'debug' },
      upstream: { caFile: cert.caFile },
      // confirmSeconds 0: every request is checked with the upstream, so the offline grace is what serves A below.
      proxy: { enabled: true, mirrors: [{ namespace: UPSTREAM, upstream: { url: upstream.url } }], deviceCredentials: { confirmSeconds: 0 } },
      httpsProxy: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, intercept: [UPSTREAM] },
      // A site member (never up): the peer endpoint must not hand out what a device's credentials fetched.
      peers: { id: 'edge-a', static: [{ id: 'edge-b', url: 'http://127.0.0.1:9' }], token: PEER_TOKEN },
    },
  });
  const proxyPort = (JSON.parse((await sat.waitForLog(/"msg":"https proxy listening"/)).input) as { port: number }).port;
  const proxyUrl = `http://127.0.0.1:${proxyPort}`;
  const siteCa = join(sat.dataDir, 'site-ca', 'ca.crt');
  const pull = await proxiedSkopeo(t, proxyUrl, siteCa, `docker://${UPSTREAM}/private/app:v1`);
  /** curl through the proxy to the intercepted host (as a device would), trusting the site CA. */
  const curl = (path: string, extra: string[] = []) =>
    run('curl', ['-sS', '--max-time', '20', '--proxy', proxyUrl, '--cacert', siteCa, '-o', '/dev/null', '-D', '-', ...extra, `https://${UPSTREAM}${path}`]);

  // Device B first, without credentials: refused with the upstream's challenge (nothing cached yet).
  const b0 = await pull(undefined);
  assert.notEqual(b0.code, 0, 'device B without credentials is refused');
  assert.match(b0.stderr, /unauthorized|401/i);

  // Device A with its credentials: the satellite fetches with them (over TLS, private CA) and caches.
  const a1 = await pull(`${USER}:${PASSWORD}`);
  assert.equal(a1.code, 0, a1.stderr);
  const got = await layoutDigests(a1.dest);
  assert.equal(got.manifest, img.manifestDigest);
  assert.deepEqual(got.blobs, [img.configDigest, ...img.layerDigests]);
  const blobGetsAfterA = upstream.logs().split('\n').filter((l) => /"GET \/v2\/private\/app\/blobs\/sha256:/.test(l)).length;
  assert.ok(blobGetsAfterA >= 3, `the blobs came from the upstream (${blobGetsAfterA} GETs)`);
  assert.match(sat.logs(), /"msg":"repository readable with device credentials only: restricted to requests the upstream authorises"/);

  // Device B after A's pull cached everything: still refused, by the satellite (manifests and blobs alike).
  const b1 = await pull(undefined);
  assert.notEqual(b1.code, 0, 'device B is refused even though the image is cached');
  assert.match(b1.stderr, /unauthorized|401/i);
  const b2 = await pull(`${USER}:wrong-password`);
  assert.notEqual(b2.code, 0, 'wrong credentials are refused');
  const m = await curl(`/v2/private/app/manifests/v1`, ['-H', 'Accept: application/vnd.oci.image.manifest.v1+json']);
  assert.match(m.stdout, /^HTTP\/1\.1 401/m);
  assert.match(m.stdout, /^www-authenticate: Basic realm="test-registry"/im, "the upstream's own challenge is relayed");
  const blob = await curl(`/v2/private/app/blobs/${img.layerDigests[0]}`);
  assert.match(blob.stdout, /^HTTP\/1\.1 401/m, 'a cached blob is refused without credentials');
  const blobA = await curl(`/v2/private/app/blobs/${img.layerDigests[0]}`, ['-u', `${USER}:${PASSWORD}`]);
  assert.match(blobA.stdout, /^HTTP\/1\.1 200/m, 'and served with them');
  // Knowing the digest is not access: the cached blob is not linked into a repository the upstream lacks it in.
  const other = await curl(`/v2/other/app/blobs/${img.layerDigests[0]}`, ['-u', `${USER}:${PASSWORD}`]);
  assert.match(other.stdout, /^HTTP\/1\.1 404/m, other.stdout);
  // The registry port (no forwarding there by default) never serves it, however the name is spelled.
  const direct = (path: string) => fetch(`${sat.url}${path}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal((await direct('/v2/private/app/manifests/v1?ns=upstream.test%3A5000')).status, 401);
  assert.equal((await direct('/v2/upstream.test-5000/private/app/manifests/v1')).status, 401, 'the store name, without ?ns=');
  assert.equal((await direct('/v2/upstream.test-5000/private/app/manifests/v1?ns=other.example')).status, 404, 'with ?ns= naming another registry');
  assert.equal((await direct(`/v2/upstream.test-5000/private/app/blobs/${img.layerDigests[0]}?ns=other.example`)).status, 404);
  // Nor is it shared with the site's other satellites by digest (their devices were not authorised).
  const peerAuth = { authorization: `Bearer ${PEER_TOKEN}`, 'x-satellite-peer': 'edge-b' };
  assert.equal((await fetch(`${sat.url}/_satellite/peer/blobs/${img.layerDigests[0]}`, { headers: peerAuth })).status, 404);
  assert.deepEqual(await (await fetch(`${sat.url}/_satellite/peer/state/${img.layerDigests[0]}`, { headers: peerAuth })).json(), { state: 'absent' });
  // Tag lists of the restricted repository are guarded too.
  assert.match((await curl('/v2/private/app/tags/list')).stdout, /^HTTP\/1\.1 401/m);

  // The warm pull by A reads no blob from the upstream (access is confirmed, content is cached).
  const a2 = await pull(`${USER}:${PASSWORD}`);
  assert.equal(a2.code, 0, a2.stderr);
  assert.deepEqual(await layoutDigests(a2.dest), got);
  const blobGets = upstream.logs().split('\n').filter((l) => /"GET \/v2\/private\/app\/blobs\/sha256:/.test(l)).length;
  assert.equal(blobGets, blobGetsAfterA, 'no blob GET on the warm pull');

  // Upstream down: A (confirmed a moment ago) is still served from the cache; B is not.
  await upstream.stop();
  const a3 = await pull(`${USER}:${PASSWORD}`);
  assert.equal(a3.code, 0, a3.stderr);
  assert.deepEqual(await layoutDigests(a3.dest), got);
  const b3 = await pull(undefined);
  assert.notEqual(b3.code, 0, 'device B is refused with the upstream down');

  // Device credentials are never logged (the satellite logged at debug level throughout).
  const logs = sat.logs();
  const basic = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
  assert.ok(!logs.includes(PASSWORD), 'the password is not in the log');
  assert.ok(!logs.includes(basic), 'the Authorization value is not in the log');
  assert.ok(!logs.includes(USER), 'the user name is not in the log');

  const status = (await (await fetch(`${sat.url}/_satellite/status`)).json()) as { proxy: { deviceChecks: number; deviceRefused: number; deviceOfflineAdmitted: number } };
  assert.ok(status.proxy.deviceChecks >= 1, `deviceChecks ${status.proxy.deviceChecks}`);
  assert.ok(status.proxy.deviceRefused >= 1, `deviceRefused ${status.proxy.deviceRefused}`);
  assert.ok(status.proxy.deviceOfflineAdmitted >= 1, `A was admitted on its earlier confirmation while offline (${status.proxy.deviceOfflineAdmitted})`);
  assert.match(logs, /"msg":"upstream unavailable; admitting device credentials it confirmed earlier"/);

  // Restart (upstream still down): the restriction is on disk, confirmations were in memory only.
  await sat.stop();
  const again = await startSatellite(t, { dataDir: sat.dataDir, config: sat.config });
  const port2 = (JSON.parse((await again.waitForLog(/"msg":"https proxy listening"/)).input) as { port: number }).port;
  const r = await run('curl', ['-sS', '--max-time', '20', '--proxy', `http://127.0.0.1:${port2}`, '--cacert', siteCa, '-o', '/dev/null', '-D', '-', '-u', `${USER}:${PASSWORD}`, `https://${UPSTREAM}/v2/private/app/manifests/v1`]);
  assert.match(r.stdout, /^HTTP\/1\.1 401/m, 'after a restart nothing is served until the upstream confirms again');
});

test("containerd (ctr --user through HTTPS_PROXY) gets a private image with the device's credentials; without them it is refused after the cache holds it", async (t) => {
  const { cert, upstream, img } = await privateUpstream(t, 'private/ctr', 'device-credentials-ctr', [512 * 1024]);
  const { sat, proxyPort } = await proxySatellite(t, upstream.url, cert.caFile);
  // containerd reads the site CA from <hosts-dir>/<host:port>/ca.crt (what runtime apply writes).
  const hostsDir = await makeTempDir(t, 'hs-certsd-');
  await mkdir(join(hostsDir, UPSTREAM));
  await copyFile(join(sat.dataDir, 'site-ca', 'ca.crt'), join(hostsDir, UPSTREAM, 'ca.crt'));
  const containerd = await startContainerd(t);
  const ctrPull = (ref: string, user: string[]) =>
    run('ctr', ['--address', containerd.address, 'images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', containerd.snapshotter, ...user, ref], {
      HTTPS_PROXY: `http://127.0.0.1:${proxyPort}`,
      NO_PROXY: 'localhost,127.0.0.1,::1',
    });

  const a = await ctrPull(`${UPSTREAM}/private/ctr:v1`, ['--user', `${USER}:${PASSWORD}`]);
  assert.equal(a.code, 0, a.stdout + a.stderr);
  const ls = await run('ctr', ['--address', containerd.address, 'images', 'ls']);
  assert.match(ls.stdout, new RegExp(`${UPSTREAM}/private/ctr:v1\\s+\\S+\\s+${img.manifestDigest}`));

  // Another device (no credentials) on a clean containerd: the cached image is refused.
  await run('ctr', ['--address', containerd.address, 'images', 'rm', '--sync', `${UPSTREAM}/private/ctr:v1`]);
  await run('ctr', ['--address', containerd.address, 'content', 'prune', 'references']);
  const b = await ctrPull(`${UPSTREAM}/private/ctr:v1`, []);
  assert.notEqual(b.code, 0, 'refused without credentials');
  assert.match(b.stdout + b.stderr, /401|unauthorized|authoriz/i);
  assert.ok(!sat.logs().includes(PASSWORD));
});

test('forward "all": credentials sent to the registry port are passed on too (no registry.auth); the default keeps them there (404 as before)', async (t) => {
  const { cert, htpasswdFile, upstream, img } = await privateUpstream(t, 'private/all', 'device-credentials-all', [64 * 1024]);
  const start = (forward: string) =>
    startSatellite(t, { config: { upstream: { caFile: cert.caFile }, proxy: { enabled: true, upstream: { url: upstream.url }, deviceCredentials: { forward } } } });
  const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' };
  const basic = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };

  const all = await start('all');
  const none = await fetch(`${all.url}/v2/private/all/manifests/v1`, { headers: accept });
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Basic realm="test-registry"/);
  const base = await fetch(`${all.url}/v2/`);
  assert.equal(base.status, 401, "GET /v2/ relays the upstream's Basic challenge");
  const ok = await fetch(`${all.url}/v2/private/all/manifests/v1`, { headers: { ...accept, ...basic } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('docker-content-digest'), img.manifestDigest);
  // skopeo straight at the registry port, with the device's credentials.
  const dest = await makeTempDir(t, 'hs-pull-');
  await skopeoCopy(`docker://${all.host}/private/all:v1`, `oci:${dest}:v1`, { srcCreds: `${USER}:${PASSWORD}` });
  assert.equal((await layoutDigests(dest)).manifest, img.manifestDigest);
  assert.equal((await fetch(`${all.url}/v2/private/all/manifests/v1`, { headers: accept })).status, 401, 'cached, still refused without credentials');

  // With registry.auth the Authorization on the registry port is the satellite's own password: never passed on
  // (here the same user and password as upstream, so passing it on would have worked).
  const guarded = await startSatellite(t, {
    config: { registry: { auth: { htpasswd: htpasswdFile } }, upstream: { caFile: cert.caFile }, proxy: { enabled: true, upstream: { url: upstream.url }, deviceCredentials: { forward: 'all' } } },
  });
  assert.equal((await fetch(`${guarded.url}/v2/private/all/manifests/v1`, { headers: { ...accept, ...basic } })).status, 404);

  const dflt = await start('https-proxy');
  assert.equal((await fetch(`${dflt.url}/v2/private/all/manifests/v1`, { headers: { ...accept, ...basic } })).status, 404, 'not forwarded from the registry port by default');
  assert.equal((await fetch(`${dflt.url}/v2/`)).status, 200);
});

test('token-auth upstream: ctr gets a token from the realm with its credentials and the satellite passes the Bearer token on', async (t) => {
  const issuer = await startTokenIssuer(t, { users: { [USER]: PASSWORD } });
  const cert = await makeServerCert(t, ['127.0.0.1']);
  const upstream = await startDockerRegistry(t, { tls: { certificate: cert.certFile, key: cert.keyFile }, token: issuer });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'device-credentials-token', layerSizes: [256 * 1024] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/private/tok:v1`, { destCreds: `${USER}:${PASSWORD}` });
  const { sat, proxyPort } = await proxySatellite(t, upstream.url, cert.caFile);
  // The 401 relays the upstream's bearer challenge, scoped to the repository.
  const probe = await run('curl', ['-sS', '--max-time', '20', '--proxy', `http://127.0.0.1:${proxyPort}`, '--cacert', join(sat.dataDir, 'site-ca', 'ca.crt'), '-o', '/dev/null', '-D', '-', `https://${UPSTREAM}/v2/private/tok/manifests/v1`]);
  assert.match(probe.stdout, /^HTTP\/1\.1 401/m);
  assert.ok(probe.stdout.toLowerCase().includes(`www-authenticate: bearer realm="${issuer.realm}",service="${issuer.service}",scope="repository:private/tok:pull"`), probe.stdout);
  // A realm on another host: challenged per repository only (untouched), and its path on the intercepted host is not the realm.
  const viaProxy = (path: string) => run('curl', ['-sS', '--max-time', '20', '--proxy', `http://127.0.0.1:${proxyPort}`, '--cacert', join(sat.dataDir, 'site-ca', 'ca.crt'), '-o', '/dev/null', '-D', '-', `https://${UPSTREAM}${path}`]);
  assert.match((await viaProxy('/v2/')).stdout, /^HTTP\/1\.1 200/m, 'no bearer challenge at /v2/ for a realm the satellite does not relay');
  const asked = issuer.requests();
  assert.match((await viaProxy(`${new URL(issuer.realm).pathname}?service=${issuer.service}`)).stdout, /^HTTP\/1\.1 404/m);
  assert.equal(issuer.requests(), asked, 'nothing relayed to a realm on another host');

  const hostsDir = await makeTempDir(t, 'hs-certsd-');
  await mkdir(join(hostsDir, UPSTREAM));
  await copyFile(join(sat.dataDir, 'site-ca', 'ca.crt'), join(hostsDir, UPSTREAM, 'ca.crt'));
  const containerd = await startContainerd(t);
  // The realm is a loopback URL: Go clients reach it directly, never through HTTPS_PROXY.
  const ctrPull = (user: string[]) =>
    run('ctr', ['--address', containerd.address, 'images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', containerd.snapshotter, ...user, `${UPSTREAM}/private/tok:v1`], {
      HTTPS_PROXY: `http://127.0.0.1:${proxyPort}`,
      NO_PROXY: 'localhost,127.0.0.1,::1',
    });
  const a = await ctrPull(['--user', `${USER}:${PASSWORD}`]);
  assert.equal(a.code, 0, a.stdout + a.stderr);
  const ls = await run('ctr', ['--address', containerd.address, 'images', 'ls']);
  assert.match(ls.stdout, new RegExp(`${UPSTREAM}/private/tok:v1\\s+\\S+\\s+${img.manifestDigest}`));
  await run('ctr', ['--address', containerd.address, 'images', 'rm', '--sync', `${UPSTREAM}/private/tok:v1`]);
  await run('ctr', ['--address', containerd.address, 'content', 'prune', 'references']);
  const b = await ctrPull([]);
  assert.notEqual(b.code, 0, 'an anonymous token grants nothing: refused, though cached');
  assert.ok(!sat.logs().includes(PASSWORD));
});
