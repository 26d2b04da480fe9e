import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StrayPulls } from '../../src/observability/stray-pulls.ts';
import { referenceMatcher } from '../../src/oci/reference-set.ts';
import type { FinishedRequest } from '../../src/registry/index.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function req(method: string, status: number, repository: string, reference: string): FinishedRequest {
  return { method, url: `/v2/${repository}/manifests/${reference}`, status, bytes: 0, seconds: 0, manifest: { repository, reference } };
}

test('stray pulls: a tag pull (HEAD, GET, then its manifests by digest) counts once under the tag; 404s count as notFound', () => {
  let now = 1_000_000;
  const desired = referenceMatcher([{ repository: 'app/web', reference: 'v1' }]);
  const s = new StrayPulls({ now: () => now, isDesired: desired });
  // One containerd pull of tools/debug:latest.
  s.observe(req('HEAD', 200, 'tools/debug', 'latest'));
  s.observe(req('GET', 200, 'tools/debug', D1));
  s.observe(req('GET', 200, 'tools/debug', D2));
  now += 10_000;
  s.observe(req('GET', 200, 'tools/debug', 'latest'));
  now += 120_000;
  // A pull by digest alone, much later: its own entry.
  s.observe(req('GET', 200, 'tools/debug', D2));
  s.observe(req('GET', 404, 'tools/missing', '1.0'));
  now += 5_000;
  s.observe(req('HEAD', 404, 'tools/missing', '1.0'));
  // The desired image and its digests are never recorded; pushes, blobs and other statuses neither.
  s.observe(req('GET', 200, 'app/web', 'v1'));
  s.observe(req('GET', 200, 'app/web', D1));
  s.observe(req('PUT', 201, 'tools/pushed', 'v1'));
  s.observe(req('GET', 500, 'tools/broken', 'v1'));
  s.observe({ method: 'GET', url: '/v2/x/blobs/y', status: 200, bytes: 10, seconds: 0 });
  assert.deepEqual(s.top(10), [
    // Busiest first (pulls + 404s); among equals the most recent.
    { repository: 'tools/missing', reference: '1.0', pulls: 0, notFound: 2 },
    { repository: 'tools/debug', reference: 'latest', pulls: 2, notFound: 0 },
    { repository: 'tools/debug', reference: D2, pulls: 1, notFound: 0 },
  ]);
  assert.deepEqual(
    s.top(10, referenceMatcher([{ repository: 'tools/debug', reference: 'latest' }])).map((p) => p.reference),
    ['1.0'],
    'what the desired state holds now is left out',
  );
});

test('stray pulls: junk names are ignored and distinct references stay under the cap, the busiest kept', () => {
  let now = 0;
  const s = new StrayPulls({ maxKeys: 100, now: () => (now += 3000) });
  for (let i = 0; i < 5; i++) s.observe(req('GET', 200, 'popular/app', 'v1'));
  s.observe(req('GET', 404, 'Bad Name', 'v1'));
  s.observe(req('GET', 404, 'ok/name', 'not a tag!'));
  s.observe(req('GET', 404, `long/${'a'.repeat(300)}`, 'v1'));
  for (let i = 0; i < 10_000; i++) s.observe(req('GET', 404, `scan/r${i}`, 'latest'));
  assert.ok(s.size <= 100, `${s.size} references kept`);
  assert.deepEqual(s.top(1), [{ repository: 'popular/app', reference: 'v1', pulls: 5, notFound: 0 }]);
  assert.ok(s.top(200).every((p) => p.repository === 'popular/app' || p.repository.startsWith('scan/')));
});
