import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startGroundControl, eventually } from '../helpers/groundcontrol.ts';
import { requireBinary } from '../helpers/bin.ts';
import { freePort } from '../helpers/ports.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { writeDesired, type StatusDoc } from '../sync/helpers.ts';
import { PEER_TEST_TOKEN, peerSatelliteConfig, peersStatus, startSiteMember } from './helpers.ts';
import { siteSecret } from '../../src/groundcontrol/fleet/site-secret.ts';

const run = promisify(execFile);

/** GET of a peer path with an optional Authorization header: status and JSON (or undefined). */
async function peerGet(sat: Satellite, path: string, authorization?: string): Promise<{ status: number; body: any; bytes: Buffer }> {
  const res = await fetch(`${sat.url}/_satellite/peer/${path}`, { headers: authorization ? { authorization } : {} });
  const bytes = Buffer.from(await res.arrayBuffer());
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    body = undefined;
  }
  return { status: res.status, body, bytes };
}

/** Requests the upstream registry has logged for /v2/ so far. */
function upstreamRequests(logs: string): string[] {
  return logs.split('\n').filter((l) => /(GET|HEAD) \/v2\//.test(l));
}

test('issue 10.1: without the token the peer endpoint is shut; with it, only referenced blobs are read and only planned ones fetched (100 random digests: no upstream request, no partial)', async (t) => {
  const registry = await startDockerRegistry(t, { accessLog: true });
  const layout = await makeTempDir(t, 'hs-peers-sec-');
  const app = await makeImage(layout, { tag: 'app', seed: 'sec-app', layerSizes: [300_000, 200_000] });
  const secret = await makeImage(layout, { tag: 'db', seed: 'sec-db', layerSizes: [400_000] });
  await skopeoCopy(`oci:${layout}:app`, `docker://${registry.host}/site/app:v1`);
  // Reachable with the satellite's upstream credentials, but not in its image list.
  await skopeoCopy(`oci:${layout}:db`, `docker://${registry.host}/private/db:v1`);

  const dir = await makeTempDir(t, 'hs-peers-sec-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: registry.url }, images: [{ repository: 'site/app', tags: ['v1'] }] });
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(htpasswd, (await run(requireBinary('htpasswd'), ['-Bbn', 'edge', 's3cret'])).stdout);
  const port = await freePort();
  const base = peerSatelliteConfig(desired, port, { id: 'edge-a', static: [] });
  const sat = await startSatellite(t, { config: { ...base, registry: { listen: { host: '127.0.0.1', port }, auth: { htpasswd, realm: 'edge' } } } });
  const basic = { authorization: `Basic ${Buffer.from('edge:s3cret').toString('base64')}` };
  const status = async () => (await (await fetch(`${sat.url}/_satellite/status`, { headers: basic })).json()) as StatusDoc;
  await eventually(async () => {
    const s = await status();
    return s.sync.appliedGeneration === 1 && !s.sync.running ? true : undefined;
  }, 60_000, 'generation 1 applied');

  const layer = app.layerDigests[0]!;
  const foreign = secret.layerDigests[0]!;
  const foreignSize = secret.layers[0]!.size;
  const bearer = `Bearer ${PEER_TEST_TOKEN}`;
  // Devices need the htpasswd password; the peer path must not be the way around it.
  assert.equal((await fetch(`${sat.url}/v2/site/app/blobs/${layer}`)).status, 401);
  for (const auth of [undefined, 'Bearer ', `Bearer ${PEER_TEST_TOKEN}x`, `Basic ${Buffer.from('edge:s3cret').toString('base64')}`, PEER_TEST_TOKEN]) {
    assert.equal((await peerGet(sat, `blobs/${layer}`, auth)).status, 401, `blob read with ${auth}`);
    assert.equal((await peerGet(sat, `state/${layer}`, auth)).status, 401, `state with ${auth}`);
    assert.equal((await peerGet(sat, `state/${foreign}?repo=private/db&size=${foreignSize}&fetch=1`, auth)).status, 401, `fetch with ${auth}`);
  }

  // With the site's token (a member, or whoever stole it): referenced blobs only, fetches of planned blobs only.
  const before = upstreamRequests(registry.logs()).length;
  assert.deepEqual((await peerGet(sat, `state/${layer}?wait=0`, bearer)).body, { state: 'present', size: app.layers[0]!.size });
  const read = await peerGet(sat, `blobs/${layer}`, bearer);
  assert.equal(read.status, 200);
  assert.equal(sha256(read.bytes), layer);
  for (const d of [foreign, secret.configDigest]) {
    const st = await peerGet(sat, `state/${d}?repo=private/db&size=${foreignSize}&fetch=1&wait=0`, bearer);
    assert.equal(st.status, 200);
    assert.equal(st.body.state, 'absent', `a blob outside the image list: ${JSON.stringify(st.body)}`);
  }
  const randoms = Array.from({ length: 100 }, () => `sha256:${randomBytes(32).toString('hex')}`);
  for (let i = 0; i < randoms.length; i += 10) {
    const answers = await Promise.all(randoms.slice(i, i + 10).map((d) => peerGet(sat, `state/${d}?repo=site/app&size=1048576&fetch=1&wait=0`, bearer)));
    for (const a of answers) assert.deepEqual([a.status, a.body.state], [200, 'absent']);
  }
  // Give any fetch that might have started the time to reach the upstream.
  await sleep(1500);
  assert.equal((await peerGet(sat, `blobs/${foreign}`, bearer)).status, 404);
  assert.equal((await peerGet(sat, `blobs/${randoms[0]}`, bearer)).status, 404);
  const after = upstreamRequests(registry.logs());
  assert.equal(after.length, before, `the upstream saw requests for the peer's asks:\n${after.slice(before).join('\n')}`);
  assert.deepEqual(await readdir(join(sat.dataDir, 'partial')), [], 'no partial file');
  assert.deepEqual((await status()).sync.partials, [], 'no partial record');
  assert.doesNotMatch(sat.logs(), /fetching a blob a peer asked for/);
});

test('issue 10.1: under Ground Control the peer endpoint takes only the site secret, which rotates with the membership (the previous one for the grace window)', async (t) => {
  const gc = await startGroundControl(t);
  const graceMs = 6000;
  const sats: Array<{ id: string; sat: Satellite }> = [];
  // No peers.token: the satellites rely on Ground Control's site secret.
  const join3 = async (name: string) => sats.push(await startSiteMember(t, gc, name, 'harbour', { siteSecretGraceMs: graceMs }));
  await join3('pi-1');
  await join3('pi-2');
  assert.equal((await gc.api('PUT', '/api/v1/groups/edge', { name: 'edge', images: [{ repository: 'site/app', tags: ['v1'] }] })).status, 201);
  assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'edge', site: 'harbour' })).status, 201);
  const membersSeen = (sat: Satellite, n: number) => eventually(async () => ((await peersStatus(sat)).members.length === n ? true : undefined), 30_000, `${n} members`);
  for (const { sat } of sats) await membersSeen(sat, 1);

  const keyFile = join(gc.dataDir, 'site-key');
  assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
  const key = Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'hex');
  const secretOf = () => siteSecret(key, { name: 'harbour', members: sats.map(({ id, sat }) => ({ id, url: sat.url })) });
  const first = secretOf();
  const probe = `state/sha256:${'0'.repeat(64)}?wait=0`;
  for (const { sat } of sats) {
    assert.equal((await peerGet(sat, probe)).status, 401, 'no token: shut');
    assert.equal((await peerGet(sat, probe, `Bearer ${first.slice(0, -1)}${first.endsWith("A") ? "B" : "A"}`)).status, 401);
    assert.equal((await peerGet(sat, probe, `Bearer ${first}`)).status, 200, 'the site secret opens it');
  }

  // A third member joins: a new secret for everyone; the old one works only for the grace window.
  await join3('pi-3');
  await membersSeen(sats[0]!.sat, 2);
  const seenAt = Date.now();
  const second = secretOf();
  assert.notEqual(second, first);
  const target = sats[0]!.sat;
  assert.equal((await peerGet(target, probe, `Bearer ${second}`)).status, 200);
  assert.equal((await peerGet(target, probe, `Bearer ${first}`)).status, 200, 'previous secret inside the grace window');
  await sleep(graceMs + 1000 - (Date.now() - seenAt));
  assert.equal((await peerGet(target, probe, `Bearer ${first}`)).status, 401, 'previous secret after the grace window');
  assert.equal((await peerGet(target, probe, `Bearer ${second}`)).status, 200);
  assert.doesNotMatch(target.logs(), new RegExp(first.replace(/[-_]/g, '.')), 'the secret is never logged');
  assert.doesNotMatch(gc.logs(), new RegExp(second.replace(/[-_]/g, '.')), 'the secret is never logged');
});
