import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GC_ENTRY, gcCli, gcCliEnv, startGroundControl } from '../helpers/groundcontrol.ts';
import { REPO_ROOT } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);

test('CLI: subcommands against a running Ground Control, tables and --json', async (t) => {
  const gc = await startGroundControl(t);
  const cli = gcCli(gc.url);

  const added = await cli('satellite', 'add', 'edge-cli', '--site', 'lab');
  assert.equal(added.code, 0, added.stderr);
  const lines = added.stdout.split('\n');
  assert.match(lines[0] ?? '', /^ID\s+NAME\s+SITE$/);
  const id = /^(edge-cli-[a-z0-9]{6})\s+edge-cli\s+lab$/m.exec(added.stdout)?.[1];
  assert.ok(id, added.stdout);
  assert.match(added.stdout, /^registration token: hsr_\S+$/m);

  const json = await cli('satellite', 'ls', '--json');
  assert.deepEqual(JSON.parse(json.stdout).satellites.map((s: { id: string }) => s.id), [id]);
  const table = await cli('satellite', 'ls');
  assert.match(table.stdout, new RegExp(`^ID\\s+NAME\\s+SITE\\s+REGISTERED\\s+GROUPS\\n${id}\\s+edge-cli\\s+lab\\s+no\\s+-$`));

  const file = join(await makeTempDir(t, 'hs-gc-cli-'), 'group.json');
  await writeFile(file, JSON.stringify({ name: 'web', images: [{ repository: 'library/nginx', tags: ['1.25'] }], platforms: ['linux/amd64'] }));
  const applied = await cli('group', 'apply', '-f', file);
  assert.equal(applied.stdout.trim(), 'group web created; new desired state for 0 satellite(s)');
  assert.equal((await cli('group', 'apply', '-f', file)).stdout.trim(), 'group web unchanged; new desired state for 0 satellite(s)');
  const assigned = await cli('assign', 'web', '--site', 'lab');
  assert.equal(assigned.stdout.trim(), 'assigned web; new desired state for 1 satellite(s)');
  const groups = await cli('group', 'ls');
  assert.match(groups.stdout, /^NAME\s+IMAGES\s+PLATFORMS\s+SATELLITES\s+SITES\s+UPDATED\nweb\s+1\s+linux\/amd64\s+-\s+lab\s+\d+s ago$/);

  const status = await cli('status');
  assert.match(status.stdout, /^1 satellite\(s\): 0 online, 0 offline, 0 in sync, 0 with failed images; broker connected; 0 message\(s\) rejected$/m);
  assert.match(status.stdout, /^ID\s+NAME\s+SITE\s+PRESENCE\s+DESIRED\s+ACKED\s+APPLIED\s+LAST SEEN\s+DISK\s+OK\/PEND\/FAIL\s+TO DOWNLOAD\s+CACHE HITS\s+REJECTED\s+LAST FAILURE$/m);
  assert.match(status.stdout, new RegExp(`^${id}\\s+edge-cli\\s+lab\\s+\\?\\s+1\\s+-\\s+-\\s+-\\s+-\\s+-\\s+-\\s+-\\s+0\\s+-$`, 'm'));
  // satellite show: a readable summary; the API's JSON only with --json.
  const shown = await cli('satellite', 'show', id as string);
  assert.match(shown.stdout, new RegExp(`^satellite   ${id} \\(edge-cli\\)$`, 'm'));
  assert.match(shown.stdout, /^site        lab$/m);
  assert.match(shown.stdout, /^groups      web$/m);
  assert.match(shown.stdout, /^images      no state report yet$/m);
  assert.equal(JSON.parse((await cli('satellite', 'show', id as string, '--json')).stdout).satellite.id, id);
  const statusJson = JSON.parse((await cli('status', '--json')).stdout);
  assert.equal(statusJson.satellites[0].desiredGeneration, 1);
  // Paged and filtered: one row a page, the next page named; --all walks them; filters narrow.
  const other = /^(edge-cli-two-[a-z0-9]{6})\s/m.exec((await cli('satellite', 'add', 'edge-cli-two', '--site', 'yard')).stdout)?.[1] as string;
  const [first, second] = [id as string, other].sort() as [string, string];
  const firstPage = await cli('status', '--limit', '1');
  assert.match(firstPage.stdout, /^2 satellite\(s\): /m);
  assert.match(firstPage.stdout, new RegExp(`^more: --after ${first}$`, 'm'));
  assert.match((await cli('status', '--limit', '1', '--after', first)).stdout, new RegExp(`^${second}\\s`, 'm'));
  const every = JSON.parse((await cli('status', '--all', '--limit', '1', '--json')).stdout);
  assert.deepEqual(every.satellites.map((s: { id: string }) => s.id), [first, second]);
  assert.equal(every.page.next, null);
  const inLab = JSON.parse((await cli('satellite', 'ls', '--site', 'lab', '--json')).stdout);
  assert.deepEqual(inLab.satellites.map((s: { id: string }) => s.id), [id]);
  // Never seen: filed under unknown, not out-of-sync (not syncing).
  const byGroup = JSON.parse((await cli('status', '--group', 'web', '--state', 'unknown', '--json')).stdout);
  assert.deepEqual(byGroup.satellites.map((s: { id: string }) => s.id), [id]);
  assert.deepEqual(JSON.parse((await cli('status', '--group', 'web', '--state', 'out-of-sync', '--json')).stdout).satellites, []);
  assert.equal((await cli('status', '--state', 'sideways')).code, 1, 'QUERY_INVALID from the API');
  assert.equal((await cli('satellite', 'rm', other)).code, 0);

  const token = await cli('token', 'create', '--site', 'lab', '--ttl', '60', '--json');
  assert.equal(JSON.parse(token.stdout).site, 'lab');
  const cmd = await cli('command', id as string, 'sync-now', '--json');
  assert.match(JSON.parse(cmd.stdout).command.status, /^(pending|sent)$/);

  const unassigned = await cli('unassign', 'web', '--site', 'lab');
  assert.equal(unassigned.code, 0, unassigned.stderr);
  assert.equal((await cli('satellite', 'rm', id as string)).stdout.trim(), `deleted ${id}`);

  // Errors: API errors exit 1 with the code; usage errors exit 2; a wrong token is refused.
  const missing = await cli('satellite', 'rm', 'nope-000000');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error SATELLITE_UNKNOWN: no satellite nope-000000$/m);
  const usage = await cli('assign', 'web');
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /give exactly one of --satellite ID or --site SITE/);
  const denied = await cli('status', '--token', 'hsa_wrong-token-0000000000');
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /error UNAUTHORIZED/);
});

test('CLI: group apply and assign say "not published" while Ground Control has no upstream.url', async (t) => {
  const gc = await startGroundControl(t, { config: { upstream: undefined } });
  const env = gcCliEnv(gc.url);
  const cli = async (...args: string[]) => (await run(process.execPath, [GC_ENTRY, ...args], { cwd: REPO_ROOT, env })).stdout.trim();
  await cli('satellite', 'add', 'edge-noup', '--site', 'lab');
  const file = join(await makeTempDir(t, 'hs-gc-cli-'), 'group.json');
  await writeFile(file, JSON.stringify({ name: 'web', images: [{ repository: 'library/nginx', tags: ['1.25'] }] }));
  assert.equal(await cli('group', 'apply', '-f', file), 'group web created; not published: Ground Control has no upstream.url');
  assert.equal(await cli('assign', 'web', '--site', 'lab'), 'assigned web; not published: Ground Control has no upstream.url');
  assert.equal(JSON.parse(await cli('unassign', 'web', '--site', 'lab', '--json')).notPublished, 'Ground Control has no upstream.url');
});
