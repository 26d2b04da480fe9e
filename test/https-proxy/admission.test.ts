import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { makeTempDir } from '../helpers/tmp.ts';
import { HttpsProxy, SiteCa, type HttpsProxyConfig } from '../../src/https-proxy/index.ts';
import { quietLog, run } from './helpers.ts';

const BASE: HttpsProxyConfig = {
  enabled: true,
  listen: { host: '127.0.0.1', port: 0 },
  allowedClients: ['127.0.0.0/8', '::1/128'],
  intercept: ['registry.test'],
  tunnel: 'allow',
  tunnelLoopback: false,
  hosts: {},
  maxConnections: 16,
  idleTimeoutSeconds: 30,
  connectTimeoutMs: 2000,
};

/** A proxy whose registry side echoes method, path and query (the admission is under test, not the registry). */
async function startProxy(t: TestContext, over: Partial<HttpsProxyConfig>): Promise<{ url: string; caFile: string }> {
  const dir = await makeTempDir(t, 'hs-site-ca-');
  const ca = await SiteCa.open(dir, quietLog);
  const proxy = new HttpsProxy({
    config: { ...BASE, ...over },
    log: quietLog,
    ca,
    serve: (req, res) => {
      req.resume();
      res.end(`${req.method} ${req.url}`);
    },
  });
  const address = await proxy.start();
  t.after(() => proxy.close());
  return { url: `http://127.0.0.1:${address.port}`, caFile: join(dir, 'ca.crt') };
}

const curl = (...args: string[]) => run('curl', ['-sS', '--max-time', '20', ...args]);

test('clients outside allowedClients get 403 before anything else', async (t) => {
  const p = await startProxy(t, { allowedClients: ['10.0.0.0/8'] });
  const r = await curl('--proxy', p.url, '--cacert', p.caFile, 'https://registry.test/v2/');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /403/);
});

test('proxy credentials: 407 without or with wrong ones; with them the listed host is answered by the registry side with ?ns=', async (t) => {
  const p = await startProxy(t, { auth: { username: 'dev', password: 'correct horse' } });
  const none = await curl('--proxy', p.url, '--cacert', p.caFile, 'https://registry.test/v2/');
  assert.match(none.stderr, /407/);
  const wrong = await curl('--proxy', p.url, '--proxy-user', 'dev:wrong-pass', '--cacert', p.caFile, 'https://registry.test/v2/');
  assert.match(wrong.stderr, /407/);
  const ok = await curl('--proxy', p.url, '--proxy-user', 'dev:correct horse', '--cacert', p.caFile, 'https://registry.test/v2/app/manifests/v1?ns=evil.test');
  assert.equal(ok.code, 0, ok.stderr);
  // The certificate verified against the site CA for registry.test; ?ns= is the CONNECT host, not the client's.
  assert.equal(ok.stdout, 'GET /v2/app/manifests/v1?ns=registry.test');
});

test('tunnel: refuse answers 403 for hosts not listed; plain HTTP proxying is 405', async (t) => {
  const p = await startProxy(t, { tunnel: 'refuse', hosts: { 'origin.test:443': '127.0.0.1:9' } });
  const r = await curl('--proxy', p.url, 'https://origin.test/');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /403/);
  const plain = await curl('-o', '/dev/null', '-w', '%{http_code}', '--proxy', p.url, 'http://origin.test/');
  assert.equal(plain.stdout, '405');
});

test('the site CA is created once (key 0600) and reused on the next start', async (t) => {
  const dir = await makeTempDir(t, 'hs-site-ca-');
  const a = await SiteCa.open(join(dir, 'ca'), quietLog);
  const b = await SiteCa.open(join(dir, 'ca'), quietLog);
  assert.equal(a.fingerprint, b.fingerprint);
  const { stat } = await import('node:fs/promises');
  assert.equal((await stat(join(dir, 'ca', 'ca.key'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'ca'))).mode & 0o777, 0o700);
  // A leaf verifies against the CA with openssl, for a DNS name and for an IP.
  const { writeFile } = await import('node:fs/promises');
  for (const host of ['registry.test', '127.0.0.1']) {
    const leaf = join(dir, `${host}.pem`);
    await writeFile(leaf, a.keyPairFor(host).cert);
    const v = await run('openssl', ['verify', '-CAfile', join(dir, 'ca', 'ca.crt'), host.includes('.test') ? '-verify_hostname' : '-verify_ip', host, leaf]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  }
});
