import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSatellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { loadSatelliteConfig } from '../../src/config/index.ts';

test('embedded defaults fill every key; env overrides the file; relative paths follow the file', async (t) => {
  const dir = await makeTempDir(t, 'hs-config-');
  const file = join(dir, 'satellite.json');
  await writeFile(file, JSON.stringify({ dataDir: 'store', registry: { maxConcurrentRequests: 7 } }));
  const config = await loadSatelliteConfig({ file, env: { SATELLITE_LISTEN: '127.0.0.1:9999' } });
  assert.equal(config.dataDir, join(dir, 'store'));
  assert.deepEqual(config.registry.listen, { host: '127.0.0.1', port: 9999 });
  assert.equal(config.registry.maxConcurrentRequests, 7);
  assert.equal(config.registry.maxManifestBytes, 4 * 1024 * 1024);
  assert.equal(config.store.readChunkBytes, 262144);
  assert.ok(Object.isFrozen(config.registry));
  const defaults = await loadSatelliteConfig({ env: {} });
  assert.deepEqual(defaults.registry.listen, { host: '0.0.0.0', port: 8585 });
});

test('every bad value is reported with its key', async (t) => {
  const dir = await makeTempDir(t, 'hs-config-');
  const file = join(dir, 'bad.json');
  await writeFile(file, JSON.stringify({ bogus: 1, registry: { listen: { port: 'eighty' }, maxConcurrentRequests: 0 }, log: { level: 'loud' } }));
  await assert.rejects(loadSatelliteConfig({ file, env: {} }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, /\(root\): unknown key "bogus"/);
    assert.match(err.message, /\/registry\/listen\/port: must be integer/);
    assert.match(err.message, /\/registry\/maxConcurrentRequests: must be >= 1/);
    assert.match(err.message, /\/log\/level: must be one of/);
    return true;
  });
  await writeFile(file, '{ not json');
  await assert.rejects(loadSatelliteConfig({ file, env: {} }), /is not valid JSON/);
  await assert.rejects(loadSatelliteConfig({ file: join(dir, 'missing.json'), env: {} }), /cannot read config .*ENOENT/);
  await assert.rejects(loadSatelliteConfig({ env: { SATELLITE_LISTEN: 'nope' } }), /SATELLITE_LISTEN must be host:port/);
});

test('the satellite refuses a bad config at start with exit status 78 and the key named', async (t) => {
  const sat = await spawnSatellite(t, { config: { registry: { listen: { port: 70000 } }, store: { gcGraceSeconds: -1 } } });
  const exit = await sat.proc.exited;
  assert.equal(exit.code, 78);
  assert.match(sat.logs(), /\/registry\/listen\/port: must be <= 65535/);
  assert.match(sat.logs(), /\/store\/gcGraceSeconds: must be >= 0/);
});

test('a TLS key that cannot be read stops start-up with 78, naming the key', async (t) => {
  const sat = await spawnSatellite(t, { config: { registry: { tls: { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' } } } });
  const exit = await sat.proc.exited;
  assert.equal(exit.code, 78);
  assert.match(sat.logs(), /registry\.tls\.cert: cannot read \/nonexistent\/cert\.pem/);
});
