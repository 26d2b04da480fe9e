import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadGroundControlConfig } from '../../src/groundcontrol/config.ts';
import { loadSatelliteConfig } from '../../src/config/index.ts';
import { REPO_ROOT } from '../helpers/satellite.ts';
import { startGroundControl } from '../helpers/groundcontrol.ts';

const EXAMPLES = join(REPO_ROOT, 'config', 'examples');

test('the example configs under config/examples load as they are, and the README shows them whole', async (t) => {
  const gc = await loadGroundControlConfig({ file: join(EXAMPLES, 'groundcontrol.json'), env: {} });
  assert.equal(gc.upstream?.url, 'https://harbor.example');
  const sat = await loadSatelliteConfig({ file: join(EXAMPLES, 'satellite-edge.json'), env: {} });
  assert.equal(sat.control?.registrationTokenFile, '/boot/hs-token');

  // The group file is accepted by a real Ground Control's API.
  const group = JSON.parse(await readFile(join(EXAMPLES, 'edge-group.json'), 'utf8')) as { name: string };
  const server = await startGroundControl(t);
  const res = await server.api('POST', '/api/v1/groups', group);
  assert.equal(res.status, 201, JSON.stringify(res.body));

  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  for (const name of ['groundcontrol.json', 'edge-group.json', 'satellite-edge.json']) {
    const text = (await readFile(join(EXAMPLES, name), 'utf8')).trim();
    assert.ok(readme.includes(text), `README shows config/examples/${name} as it is`);
  }
});
