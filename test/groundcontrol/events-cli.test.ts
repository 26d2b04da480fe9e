import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { addAndRegister, connectSatellite, eventually, GC_ENTRY, gcCli, gcCliEnv, startGroundControl, TEST_ADMIN_TOKEN } from '../helpers/groundcontrol.ts';
import { defer } from '../helpers/cleanup.ts';
import { spawnPeer, waitForLine } from '../helpers/process.ts';
import { REPO_ROOT } from '../helpers/satellite.ts';

test('groundcontrol events: a table of the log, filters, --json, and --follow prints new lines until Ctrl-C', async (t) => {
  const gc = await startGroundControl(t);
  const env = gcCliEnv(gc.url);
  const cli = gcCli(gc.url);
  const reg = await addAndRegister(gc, 'edge-ev');
  const sat = await connectSatellite(t, gc.mqttUrl as string, reg);
  sat.publish(`hs/v1/satellites/${reg.satelliteId}/presence`, JSON.stringify({ type: 'presence', satelliteId: reg.satelliteId, online: true, at: new Date().toISOString() }), { qos: 1 });
  await eventually(async () => (await gc.api('GET', '/api/v1/events?type=online')).body.events.length === 1, 10_000, 'the online line');

  const table = await cli('events');
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.split('\n');
  assert.match(lines[0] ?? '', /^TIME\s+TYPE\s+SATELLITE\s+ACTOR\s+MESSAGE$/);
  // Oldest first: the satellite was created, registered, then came online.
  assert.match(lines[1] ?? '', new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\s+audit\\s+-\\s+admin token \\S+\\s+satellite ${reg.satelliteId} \\(edge-ev\\) created`));
  assert.match(lines.at(-1) ?? '', new RegExp(`\\s+online\\s+${reg.satelliteId}\\s+-\\s+${reg.satelliteId} went online$`));

  const online = await cli('events', '--type', 'online', '--satellite', reg.satelliteId, '--json');
  assert.equal(online.code, 0, online.stderr);
  const doc = JSON.parse(online.stdout);
  assert.deepEqual(doc.events.map((e: { action: string }) => e.action), ['satellite.online']);
  assert.equal(doc.page.newest, (await gc.api('GET', '/api/v1/events?limit=1')).body.events[0].seq);

  assert.equal((await cli('events', '--since', '1h', '--type', 'audit')).stdout.split('\n').length, 3, 'header and two audit lines');
  assert.equal((await cli('events', '--since', new Date(Date.now() + 60_000).toISOString())).stdout, 'no events');
  const bad = await cli('events', '--since', 'yesterday');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--since must be a duration/);

  // --follow: the last line, then what happens after it started.
  const follow = spawnPeer(process.execPath, [GC_ENTRY, 'events', '--follow', '--limit', '1'], { cwd: REPO_ROOT, env, name: 'events-follow' });
  defer(t, () => follow.stop(5000));
  await waitForLine(follow, /went online$/, 10_000);
  const created = await gc.api('POST', '/api/v1/satellites', { name: 'late-arrival' });
  assert.equal(created.status, 201);
  await waitForLine(follow, new RegExp(`audit\\s+-\\s+admin token \\S+\\s+satellite ${created.body.satellite.id} \\(late-arrival\\) created`), 10_000);
  sat.publish(`hs/v1/satellites/${reg.satelliteId}/presence`, JSON.stringify({ type: 'presence', satelliteId: reg.satelliteId, online: false, at: new Date().toISOString() }), { qos: 1 });
  await waitForLine(follow, new RegExp(`offline\\s+${reg.satelliteId}\\s+-\\s+${reg.satelliteId} went offline$`), 10_000);
  const started = Date.now();
  const exit = await follow.kill('SIGINT');
  assert.equal(exit.code, 0, follow.output());
  assert.ok(Date.now() - started < 3000, 'Ctrl-C ends --follow at once');
  // Each line once: the header, the backlog line, and the two that came after.
  assert.equal(follow.lines().filter((l) => l.trim() !== '').length, 4, follow.output());
});

test('Ground Control metrics: scraped with the admin token, valid exposition (promtool), the fleet, publishes, report lag, API and broker', async (t) => {
  const gc = await startGroundControl(t);
  assert.equal((await fetch(`${gc.url}/api/v1/metrics`)).status, 401);
  const reg = await addAndRegister(gc, 'edge-metrics');
  const sat = await connectSatellite(t, gc.mqttUrl as string, reg);
  sat.publish(`hs/v1/satellites/${reg.satelliteId}/presence`, JSON.stringify({ type: 'presence', satelliteId: reg.satelliteId, online: true, at: new Date().toISOString() }), { qos: 1 });
  assert.equal((await gc.api('POST', '/api/v1/groups', { name: 'web', images: [{ repository: 'library/nginx', tags: ['1.25'] }] })).status, 201);
  assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'web', satellite: reg.satelliteId })).status, 201);
  await eventually(async () => (await gc.api('GET', '/api/v1/status')).body.counts.online === 1, 10_000, 'the satellite online');

  const text = await eventually(async () => {
    const res = await fetch(`${gc.url}/api/v1/metrics`, { headers: { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    return /groundcontrol_mqtt_publishes_total\{channel="desired",result="ok"\} [1-9]/.test(body) ? body : undefined;
  }, 10_000, 'an acknowledged desired-state publish');

  const check = await promtool(text);
  assert.equal(check.code, 0, `promtool check metrics:\n${check.stderr}`);

  const samples = parseExposition(text);
  const value = (name: string, labels: Record<string, string> = {}) => samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  assert.equal(value('groundcontrol_satellites', { state: 'online' }), 1);
  assert.equal(value('groundcontrol_satellites', { state: 'all' }), 1);
  assert.equal(value('groundcontrol_satellites', { state: 'failed' }), 0);
  assert.ok((value('groundcontrol_satellites', { state: 'in_sync' }) ?? -1) + (value('groundcontrol_satellites', { state: 'out_of_sync' }) ?? -1) >= 0);
  assert.equal(value('groundcontrol_report_lag_seconds_count', { type: 'presence' }), 1);
  assert.ok((value('groundcontrol_mqtt_publishes_total', { channel: 'desired', result: 'ok' }) ?? 0) >= 1);
  assert.equal(value('groundcontrol_broker_connected'), 1);
  // Ground Control's own link and the satellite.
  assert.equal(value('groundcontrol_broker_connections', { state: 'all' }), 2);
  assert.equal(value('groundcontrol_broker_connections', { state: 'pending' }), 0);
  assert.equal(value('groundcontrol_api_requests_total', { method: 'POST', route: '/api/v1/groups', status_class: '2xx' }), 1);
  assert.ok((value('groundcontrol_api_request_duration_seconds_count', { method: 'GET', route: '/api/v1/status' }) ?? 0) >= 1);
  assert.equal(value('groundcontrol_api_requests_total', { method: 'GET', route: '/api/v1/metrics', status_class: '4xx' }), 1);
});

async function promtool(text: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, _stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') return reject(err);
      resolve({ code: err ? ((err as { code: number }).code ?? 1) : 0, stderr });
    });
    child.stdin?.end(text);
  });
}

/** Samples of the Prometheus text format (name, labels, value); comments skipped. */
function parseExposition(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k as string] = v as string;
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}
