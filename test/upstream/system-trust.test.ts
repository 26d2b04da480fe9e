import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'node:test';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeServerCert } from '../helpers/test-ca.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { loadSatelliteConfig } from '../../src/config/index.ts';
import { DEBIAN_CA_BUNDLE } from '../../src/config/load.ts';
import { UpstreamErrorCode } from '../../src/upstream/index.ts';
import { rejectsWithCode, upstreamClient } from './setup.ts';

// The machine's own bundle is read, never written: the "installed" private CA lives in a temp copy.
const SYSTEM_BUNDLE = DEBIAN_CA_BUNDLE;

test('upstream TLS trusts the system bundle (systemTrust, SSL_CERT_FILE) plus caFile; Node roots alone do not know a private CA', async (t) => {
  const cert = await makeServerCert(t, ['127.0.0.1', 'upstream.test']);
  const upstream = await startDockerRegistry(t, { tls: { certificate: cert.certFile, key: cert.keyFile } });
  assert.match(upstream.url, /^https:/);

  // An operator's update-ca-certificates, simulated: the system bundle with the private CA appended.
  const dir = await makeTempDir(t, 'hs-system-trust-');
  const installed = join(dir, 'ca-certificates.crt');
  await writeFile(installed, `${await readFile(SYSTEM_BUNDLE, 'utf8')}\n${await readFile(cert.caFile, 'utf8')}`);

  // Trusted through the system bundle (no caFile).
  await upstreamClient(t, { url: upstream.url, systemTrust: true, systemCaFile: installed }).client.ping();
  // The real system bundle does not know the private CA: refused on the certificate.
  const e1 = await rejectsWithCode(upstreamClient(t, { url: upstream.url, retries: 0, systemTrust: true, systemCaFile: SYSTEM_BUNDLE }).client.ping(), UpstreamErrorCode.unreachable);
  assert.match(e1.message, /certificate|TLS/i);
  // systemTrust off: Node's bundled roots only, the installed CA is ignored.
  const e2 = await rejectsWithCode(upstreamClient(t, { url: upstream.url, retries: 0, systemTrust: false, systemCaFile: installed }).client.ping(), UpstreamErrorCode.unreachable);
  assert.match(e2.message, /certificate|TLS/i);
  // caFile adds to the system bundle.
  await upstreamClient(t, { url: upstream.url, systemTrust: true, systemCaFile: SYSTEM_BUNDLE, caFile: cert.caFile }).client.ping();
  // An unreadable bundle falls back to Node's roots (plus caFile), it does not stop the satellite.
  await upstreamClient(t, { url: upstream.url, systemCaFile: join(dir, 'missing.crt'), caFile: cert.caFile }).client.ping();

  // The config resolves the bundle the OpenSSL way: $SSL_CERT_FILE, else Debian's path.
  const cfgFile = join(dir, 'satellite.json');
  await writeFile(cfgFile, JSON.stringify({ dataDir: dir }));
  const env = { SSL_CERT_FILE: installed };
  assert.equal((await loadSatelliteConfig({ file: cfgFile, env })).upstream.systemCaFile, installed);
  assert.equal((await loadSatelliteConfig({ file: cfgFile, env })).upstream.systemTrust, true);
  assert.equal((await loadSatelliteConfig({ file: cfgFile, env: {} })).upstream.systemCaFile, SYSTEM_BUNDLE);
  await writeFile(cfgFile, JSON.stringify({ dataDir: dir, upstream: { systemTrust: false } }));
  assert.equal((await loadSatelliteConfig({ file: cfgFile, env })).upstream.systemCaFile, undefined);
});
