import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import test from 'node:test';
import { promisify } from 'node:util';
import { requireBinary } from '../helpers/bin.ts';
import { defer } from '../helpers/cleanup.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { isSatelliteError } from '../../src/lib/errors.ts';
import { UPSTREAM_DEFAULTS, UpstreamClient, UpstreamErrorCode } from '../../src/upstream/index.ts';
import { rejectsWithCode, silentLog, upstreamClient } from './setup.ts';

const run = promisify(execFile);

test('TLS upstream: caFile trusts a private CA, insecureSkipVerify skips checks', async (t) => {
  const dir = await makeTempDir(t, 'hs-upstream-tls-');
  const key = join(dir, 'server.key');
  const cert = join(dir, 'server.crt');
  await run(requireBinary('openssl'), [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
  ]);
  const server = createServer({ key: await readFile(key), cert: await readFile(cert) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' });
    res.end('{}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(t, () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  await upstreamClient(t, { url, caFile: cert }).client.ping();
  await upstreamClient(t, { url, insecureSkipVerify: true }).client.ping();
  const err = await rejectsWithCode(upstreamClient(t, { url, retries: 0 }).client.ping(), UpstreamErrorCode.unreachable);
  assert.match(err.message, /TLS|certificate/i);

  assert.throws(
    () => new UpstreamClient({ ...UPSTREAM_DEFAULTS, url, caFile: join(dir, 'missing.pem') }, silentLog()),
    (e: unknown) => isSatelliteError(e, 'CONFIG_INVALID') && /upstream\.caFile/.test(e.message),
  );
});
