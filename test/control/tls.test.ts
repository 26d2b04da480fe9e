import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { requireBinary } from '../helpers/bin.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { startBroker } from './broker.ts';
import { connectGc, field, openSatellite, until } from './helpers.ts';

const run = promisify(execFile);

/** A throwaway CA and a server certificate for 127.0.0.1 (EC keys: fast). */
async function makeCerts(dir: string): Promise<{ caFile: string; cert: string; key: string }> {
  const openssl = requireBinary('openssl');
  const p = (f: string) => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run(openssl, ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=hs-test-ca']);
  await run(openssl, ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await run(openssl, ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('ext.cnf')]);
  return { caFile: p('ca.crt'), cert: await readFile(p('server.crt'), 'utf8'), key: await readFile(p('server.key'), 'utf8') };
}

test('mqtts:// broker with a private CA: trusted through caFile, refused without it', async (t) => {
  const certs = await makeCerts(await makeTempDir(t, 'hs-certs-'));
  const broker = await startBroker(t, { tls: { cert: certs.cert, key: certs.key } });
  assert.match(broker.url, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
  const gc = await connectGc(t, broker.url, { ca: await readFile(certs.caFile) });

  const sat = await openSatellite(t, { dataDir: await makeTempDir(t), config: { satelliteId: 'sat-tls', mqtt: { url: broker.url, caFile: certs.caFile } } });
  await gc.waitFor('online over TLS', (m) => m.satelliteId === 'sat-tls' && m.channel === 'presence' && field(m, 'online') === true);
  assert.ok(sat.control.status().connection.connected);

  // The top-level caFile serves too (it also covers Ground Control's HTTPS).
  const viaTop = await openSatellite(t, { dataDir: await makeTempDir(t), config: { satelliteId: 'sat-tls-2', caFile: certs.caFile, mqtt: { url: broker.url } } });
  await until('connected with control.caFile', () => viaTop.control.status().connection.connected);

  const untrusting = await openSatellite(t, { dataDir: await makeTempDir(t), config: { satelliteId: 'sat-notrust', mqtt: { url: broker.url } } });
  await until('certificate refused', () => /certificate/i.test(untrusting.control.status().connection.lastError ?? ''), 5000, () => untrusting.control.status());
  assert.equal(untrusting.control.status().connection.connected, false);
});
