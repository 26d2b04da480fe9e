import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnGroundControl, startGroundControl, TEST_ADMIN_TOKEN } from '../helpers/groundcontrol.ts';
import { makeTempDir } from '../helpers/tmp.ts';

const NGINX = { repository: 'library/nginx', tags: ['1.25'] };

test('API: satellites, groups and assignments; admin token; clear 4xx errors', async (t) => {
  const gc = await startGroundControl(t);

  await t.test('401 without or with a wrong admin token; health and register need none', async () => {
    const none = await gc.api('GET', '/api/v1/satellites', undefined, null);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'UNAUTHORIZED');
    assert.match(none.body.error.message, /admin token is required/);
    const wrong = await gc.api('GET', '/api/v1/status', undefined, 'hsa_not-the-right-token-at-all');
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.error.message, /not valid/);
    assert.equal((await gc.api('GET', '/api/v1/healthz', undefined, null)).status, 200);
    assert.equal((await gc.api('POST', '/api/v1/register', { token: 'x'.repeat(20) }, null)).body.error.code, 'TOKEN_UNKNOWN');
  });

  let satId = '';
  await t.test('satellites: create, list, show, move, delete', async () => {
    const created = await gc.api('POST', '/api/v1/satellites', { name: 'Edge One', site: 'berlin' });
    assert.equal(created.status, 201);
    satId = created.body.satellite.id;
    assert.match(satId, /^edge-one-[a-z0-9]{6}$/);
    assert.equal(created.body.satellite.site, 'berlin');
    assert.match(created.body.registration.token, /^hsr_/);
    assert.ok(Date.parse(created.body.registration.expiresAt) > Date.now());
    const other = await gc.api('POST', '/api/v1/satellites', { name: 'edge-two' });
    assert.equal(other.status, 201);

    const list = await gc.api('GET', '/api/v1/satellites');
    assert.deepEqual(list.body.satellites.map((s: { name: string }) => s.name), ['Edge One', 'edge-two']);
    const atBerlin = await gc.api('GET', '/api/v1/satellites?site=berlin');
    assert.deepEqual(atBerlin.body.satellites.map((s: { id: string }) => s.id), [satId]);

    const shown = await gc.api('GET', `/api/v1/satellites/${satId}`);
    assert.equal(shown.status, 200);
    assert.equal(shown.body.satellite.name, 'Edge One');
    assert.equal(shown.body.satellite.mqttPasswordHash, undefined, 'no credential material in answers');
    assert.equal(shown.body.satellite.tokens.length, 1);
    assert.equal(shown.body.satellite.tokens[0].token, undefined, 'token secrets are shown once only');

    const moved = await gc.api('PATCH', `/api/v1/satellites/${satId}`, { site: 'paris' });
    assert.equal(moved.body.satellite.site, 'paris');

    const del = await gc.api('DELETE', `/api/v1/satellites/${other.body.satellite.id}`);
    assert.deepEqual(del.body, { deleted: other.body.satellite.id });
    assert.equal((await gc.api('GET', `/api/v1/satellites/${other.body.satellite.id}`)).status, 404);
    assert.equal((await gc.api('DELETE', `/api/v1/satellites/${other.body.satellite.id}`)).body.error.code, 'SATELLITE_UNKNOWN');
  });

  await t.test('groups: apply (create, update, unchanged), list, show, delete', async () => {
    const created = await gc.api('POST', '/api/v1/groups', { name: 'web', images: [NGINX], platforms: ['linux/arm64'] });
    assert.equal(created.status, 201);
    assert.equal(created.body.created, true);
    const same = await gc.api('PUT', '/api/v1/groups/web', { images: [NGINX], platforms: ['linux/arm64'] });
    assert.equal(same.status, 200);
    assert.deepEqual([same.body.created, same.body.changed], [false, false]);
    const updated = await gc.api('PUT', '/api/v1/groups/web', { images: [{ ...NGINX, tags: ['1.26'] }] });
    assert.deepEqual([updated.body.created, updated.body.changed], [false, true]);
    await gc.api('POST', '/api/v1/groups', { name: 'tmp', images: [{ repository: 'a/b', digests: [`sha256:${'a'.repeat(64)}`] }] });
    const list = await gc.api('GET', '/api/v1/groups');
    assert.deepEqual(list.body.groups.map((g: { name: string }) => g.name), ['tmp', 'web']);
    const shown = await gc.api('GET', '/api/v1/groups/web');
    assert.deepEqual(shown.body.group.images, [{ repository: 'library/nginx', tags: ['1.26'] }]);
    assert.equal((await gc.api('DELETE', '/api/v1/groups/tmp')).status, 200);
    assert.equal((await gc.api('GET', '/api/v1/groups/tmp')).body.error.code, 'GROUP_UNKNOWN');
  });

  await t.test('assignments: to a satellite and to a site; duplicates and unknowns', async () => {
    const toSat = await gc.api('POST', '/api/v1/assignments', { group: 'web', satellite: satId });
    assert.equal(toSat.status, 201);
    assert.deepEqual(toSat.body.published, [satId]);
    assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'web', satellite: satId })).body.error.code, 'ASSIGNMENT_EXISTS');
    const toSite = await gc.api('POST', '/api/v1/assignments', { group: 'web', site: 'paris' });
    assert.equal(toSite.status, 201);
    const list = await gc.api('GET', '/api/v1/assignments');
    assert.deepEqual(
      list.body.assignments.map((a: Record<string, string>) => [a.group, a.satellite ?? a.site]),
      [['web', satId], ['web', 'paris']],
    );
    assert.deepEqual((await gc.api('GET', `/api/v1/satellites/${satId}`)).body.satellite.groups, ['web']);
    const removed = await gc.api('DELETE', `/api/v1/assignments?group=web&site=paris`);
    assert.equal(removed.status, 200);
    assert.equal((await gc.api('DELETE', `/api/v1/assignments?group=web&site=paris`)).body.error.code, 'ASSIGNMENT_UNKNOWN');
    assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'nope', satellite: satId })).body.error.code, 'GROUP_UNKNOWN');
    assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'web', satellite: 'nope-1' })).body.error.code, 'SATELLITE_UNKNOWN');
  });

  await t.test('malformed bodies: 4xx naming the key', async () => {
    const cases: Array<[string, string, unknown, number, RegExp]> = [
      ['POST', '/api/v1/satellites', {}, 400, /\(root\): must have required property 'name'/],
      ['POST', '/api/v1/satellites', { name: 'ok', site: 'Not A Slug', extra: 1 }, 400, /unknown key "extra"\n {2}\/site: must match pattern "\^\[a-z0-9\]/],
      ['POST', '/api/v1/groups', { name: 'g', images: [{ repository: 'a/b', tagz: ['x'] }] }, 400, /\/images\/0: unknown key "tagz"/],
      ['POST', '/api/v1/groups', { name: 'g', images: [{ repository: 'a/b' }] }, 400, /\/images\/0: needs at least one tag or digest/],
      ['POST', '/api/v1/groups', { name: 'g', images: [{ repository: 'A/B', tags: ['x'] }] }, 400, /\/images\/0\/repository: invalid repository name/],
      ['POST', '/api/v1/groups', { name: 'g', images: [], platforms: ['linux'] }, 400, /\/platforms\/0: must match pattern/],
      ['PUT', '/api/v1/groups/web', { name: 'other', images: [] }, 400, /\/name: "other" differs/],
      ['POST', '/api/v1/assignments', { group: 'web', satellite: satId, site: 'x' }, 400, /exactly one of "satellite" or "site"/],
      ['POST', '/api/v1/tokens', { ttlSeconds: 0 }, 400, /\/ttlSeconds: must be >= 1/],
      ['POST', `/api/v1/satellites/${satId}/commands`, { name: 'rm -rf' }, 400, /\/name: must be one of/],
      ['POST', '/api/v1/satellites', '{"name":', 400, /not valid JSON/],
    ];
    for (const [method, path, body, status, re] of cases) {
      const res = await gc.api(method, path, body);
      assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)}`);
      assert.equal(res.body.error.code, 'BODY_INVALID');
      assert.match(res.body.error.message, re);
    }
    const notJson = await fetch(`${gc.url}/api/v1/satellites`, { method: 'POST', headers: { Authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'Content-Type': 'text/plain' }, body: 'x' });
    assert.equal(notJson.status, 415);
    const huge = await gc.api('POST', '/api/v1/groups', { name: 'g', images: [], pad: 'x'.repeat(2 * 1024 * 1024) });
    assert.equal(huge.status, 413);
  });

  await t.test('404 and 405', async () => {
    assert.equal((await gc.api('GET', '/api/v1/nothing')).body.error.code, 'NOT_FOUND');
    assert.equal((await gc.api('GET', '/api/v1/satellites/no-such-1')).body.error.code, 'SATELLITE_UNKNOWN');
    assert.equal((await gc.api('GET', `/api/v1/satellites/${satId}/commands/c-nope`)).body.error.code, 'COMMAND_UNKNOWN');
    const m = await gc.api('DELETE', '/api/v1/status');
    assert.equal(m.status, 405);
  });
});

test('bad config: exit 78 naming the key', async (t) => {
  const gc = await spawnGroundControl(t, { config: { api: { listen: { port: 'eighty' } }, registrationTokenTtlSeconds: -1, bogus: true } });
  const exit = await gc.proc.exited;
  assert.equal(exit.code, 78, gc.logs());
  assert.match(gc.logs(), /\/api\/listen\/port: must be integer/);
  assert.match(gc.logs(), /\/registrationTokenTtlSeconds: must be >= 1/);
  assert.match(gc.logs(), /unknown key "bogus"/);
});

test('first start without an admin token generates one into the data dir; admin-token create adds one', async (t) => {
  const dir = await makeTempDir(t, 'hs-gc-admin-');
  const gc = await startGroundControl(t, { dataDir: dir, env: { GROUNDCONTROL_ADMIN_TOKEN: '' } });
  const { readFile, stat } = await import('node:fs/promises');
  const file = join(dir, 'admin-token');
  const token = (await readFile(file, 'utf8')).trim();
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await gc.api('GET', '/api/v1/status', undefined, token)).status, 200);
  assert.equal((await gc.api('GET', '/api/v1/status')).status, 401, 'the test token was not configured');
  // A second token from the CLI, while Ground Control runs (LMDB is multi-process safe).
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { stdout } = await promisify(execFile)(process.execPath, ['src/cli/groundcontrol.ts', 'admin-token', 'create', '--data-dir', dir], { cwd: join(import.meta.dirname, '..', '..') });
  const second = stdout.trim();
  assert.match(second, /^hsa_/);
  assert.equal((await gc.api('GET', '/api/v1/status', undefined, second)).status, 200);
  await writeFile(join(dir, 'unused'), '');
});
