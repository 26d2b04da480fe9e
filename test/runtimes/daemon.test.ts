import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSatellite, startSatellite } from '../helpers/satellite.ts';
import { httpStatus } from '../helpers/process.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { writeFiles } from './helpers.ts';

test('applyOnStart without upstreams is a config error: exit 78 naming the key', async (t) => {
  const sat = await spawnSatellite(t, { config: { runtimes: { applyOnStart: true, containerd: { enabled: true } } } });
  const exit = await sat.proc.exited;
  assert.equal(exit.code, 78, sat.logs());
  assert.match(sat.logs(), /\/runtimes\/upstreams/);
});

test('applyOnStart with a malformed runtime file: logged, nothing written, the satellite keeps serving', async (t) => {
  const root = await makeTempDir(t, 'hs-rt-root-');
  await writeFiles(root, { 'daemon.json': '{ "log-driver": ' });
  const certsDir = join(root, 'certs.d');
  const sat = await startSatellite(t, {
    config: { runtimes: { applyOnStart: true, upstreams: ['docker.io'], containerd: { enabled: true, certsDir }, docker: { enabled: true, daemonJson: join(root, 'daemon.json') } } },
  });
  await sat.waitForLog(/"msg":"runtime configuration not applied"/);
  assert.match(sat.logs(), /daemon\.json is not valid JSON/);
  assert.equal(await readFile(join(root, 'daemon.json'), 'utf8'), '{ "log-driver": ');
  await assert.rejects(readFile(join(certsDir, 'docker.io', 'hosts.toml')), { code: 'ENOENT' }, 'all or nothing');
  assert.equal(await httpStatus(`${sat.url}/v2/`), 200);
});
