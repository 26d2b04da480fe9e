import assert from 'node:assert/strict';
import test from 'node:test';
import { validate } from '../../src/lib/validate.ts';
import { isSatelliteError } from '../../src/lib/errors.ts';
import { parseWwwAuthenticate } from '../../src/upstream/auth-challenge.ts';
import { parseContentRange, parseUnsatisfiedRange } from '../../src/lib/content-range.ts';
import { UPSTREAM_DEFAULTS, upstreamConfigSchema, type UpstreamConfig } from '../../src/upstream/index.ts';
import { redactUrl, redirectTarget, sameOrigin } from '../../src/upstream/redirects.ts';
import { backoffMs, parseRetryAfter } from '../../src/upstream/retry-after.ts';
import { TokenCache } from '../../src/upstream/token-cache.ts';
import { filtersApplied, nextReferrersPage, parseReferrersBody } from '../../src/upstream/referrers.ts';

test('WWW-Authenticate challenges', () => {
  assert.deepEqual(
    parseWwwAuthenticate('Bearer realm="https://harbor.example.com/service/token",service="harbor-registry",scope="repository:library/nginx:pull"'),
    [{ scheme: 'bearer', params: { realm: 'https://harbor.example.com/service/token', service: 'harbor-registry', scope: 'repository:library/nginx:pull' } }],
  );
  // Scopes with commas inside quotes, an error param, several challenges, odd spacing, escapes.
  assert.deepEqual(
    parseWwwAuthenticate('Bearer realm="http://a/token", service=reg , scope="repository:x:pull,push",error="insufficient_scope", Basic realm="q\\"uoted"'),
    [
      { scheme: 'bearer', params: { realm: 'http://a/token', service: 'reg', scope: 'repository:x:pull,push', error: 'insufficient_scope' } },
      { scheme: 'basic', params: { realm: 'q"uoted' } },
    ],
  );
  assert.deepEqual(parseWwwAuthenticate('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  assert.deepEqual(parseWwwAuthenticate(['Basic realm="a"', 'Bearer realm="b"']).map((c) => c.scheme), ['basic', 'bearer']);
  assert.deepEqual(parseWwwAuthenticate(undefined), []);
  assert.deepEqual(parseWwwAuthenticate('Negotiate'), [{ scheme: 'negotiate', params: {} }]);
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="unterminated'), [{ scheme: 'bearer', params: { realm: 'unterminated' } }]);
});

test('Retry-After and backoff', () => {
  const now = Date.parse('2024-05-01T12:00:00Z');
  assert.equal(parseRetryAfter('1', now), 1000);
  assert.equal(parseRetryAfter(' 120 ', now), 120_000);
  assert.equal(parseRetryAfter('Wed, 01 May 2024 12:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Wed, 01 May 2024 11:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter('-1', now), undefined);
  assert.equal(parseRetryAfter('1.5', now), undefined);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
  assert.equal(backoffMs(0, 250, 10_000, () => 0), 125);
  assert.equal(backoffMs(3, 250, 10_000, () => 0.999999), 2000);
  assert.equal(backoffMs(20, 250, 10_000, () => 0.999999), 10_000);
});

test('Content-Range', () => {
  assert.deepEqual(parseContentRange('bytes 100-999/1000'), { start: 100, end: 999, total: 1000 });
  assert.deepEqual(parseContentRange('bytes 0-0/*'), { start: 0, end: 0, total: undefined });
  assert.equal(parseContentRange('bytes 100-99/1000'), undefined);
  assert.equal(parseContentRange('bytes 100-1000/1000'), undefined);
  assert.equal(parseContentRange('bytes=100-999/1000'), undefined);
  assert.equal(parseContentRange('items 1-2/3'), undefined);
  assert.equal(parseContentRange(undefined), undefined);
  assert.equal(parseUnsatisfiedRange('bytes */1000'), 1000);
  assert.equal(parseUnsatisfiedRange('bytes 0-1/2'), undefined);
});

test('redirect targets and origins', () => {
  const from = new URL('https://harbor.example.com/v2/p/r/blobs/sha256:aa');
  assert.equal(redirectTarget(from, '/other')?.href, 'https://harbor.example.com/other');
  assert.equal(redirectTarget(from, 'https://s3.example.com/b?sig=1#frag')?.href, 'https://s3.example.com/b?sig=1');
  assert.equal(redirectTarget(from, 'ftp://x/y'), undefined);
  assert.equal(redirectTarget(from, undefined), undefined);
  assert.ok(sameOrigin(from, new URL('https://harbor.example.com:443/x')));
  assert.ok(!sameOrigin(from, new URL('http://harbor.example.com/x')));
  assert.ok(!sameOrigin(new URL('http://127.0.0.1:5000/'), new URL('http://127.0.0.1:5001/')));
  assert.equal(redactUrl(new URL('https://s3.example.com/b/k?X-Amz-Signature=abc')), 'https://s3.example.com/b/k?…');
});

test('token cache: expiry with a margin, drop, shared fetches', async () => {
  let now = 0;
  const cache = new TokenCache({ now: () => now });
  const key = TokenCache.key('http://realm', 'svc', 'repository:a:pull');
  cache.set(key, 't1', 300);
  now = 289_000;
  assert.equal(cache.get(key), 't1');
  now = 290_000; // 10 s before expiry
  assert.equal(cache.get(key), undefined);
  cache.set(key, 't2', undefined); // docker token spec default: 60 s
  now += 49_000;
  assert.equal(cache.get(key), 't2');
  now += 1000;
  assert.equal(cache.get(key), undefined);
  cache.set(key, 't3', 4); // short-lived: usable for half its life
  now += 1999;
  assert.equal(cache.get(key), 't3');
  cache.drop(key, 'other');
  assert.equal(cache.get(key), 't3', 'dropping a token that was already replaced is a no-op');
  cache.drop(key, 't3');
  assert.equal(cache.get(key), undefined);

  let fetches = 0;
  const fetch = async () => {
    fetches++;
    await new Promise((r) => setTimeout(r, 10));
    return { token: `f${fetches}`, expiresInS: 60 };
  };
  const results = await Promise.all([1, 2, 3].map(() => cache.getOrFetch(key, fetch)));
  assert.equal(fetches, 1);
  assert.deepEqual(results.map((r) => r.token), ['f1', 'f1', 'f1']);
  assert.ok(results.every((r) => r.fresh));
  assert.deepEqual(await cache.getOrFetch(key, fetch), { token: 'f1', fresh: false });

  const small = new TokenCache({ maxEntries: 2 });
  small.set('a', '1', 60);
  small.set('b', '2', 60);
  small.set('c', '3', 60);
  assert.equal(small.size, 2);
  assert.equal(small.get('a'), undefined);
});

test('config schema: defaults and refusals', () => {
  const config = validate<UpstreamConfig>(upstreamConfigSchema, { url: 'https://harbor.example.com' }, 'upstream config');
  assert.deepEqual(config, { url: 'https://harbor.example.com', insecureSkipVerify: false, ...UPSTREAM_DEFAULTS });
  const withCreds = validate<UpstreamConfig>(upstreamConfigSchema, { url: 'http://127.0.0.1:5000/prefix', username: 'robot$edge+sat1', password: 'x', retries: 0 }, 'upstream config');
  assert.equal(withCreds.retries, 0);
  for (const bad of [
    {},
    { url: 'ftp://x' },
    { url: 'https://h', retries: -1 },
    { url: 'https://h', password: 'only' },
    { url: 'https://h', timeout: 5 },
    { url: 'https://h', maxConnections: 0 },
  ]) {
    assert.throws(() => validate(upstreamConfigSchema, bad, 'upstream config'), (e: unknown) => isSatelliteError(e, 'CONFIG_INVALID'), JSON.stringify(bad));
  }
});

test('referrers answers: index parsing, OCI-Filters-Applied, Link rel="next" kept to the same registry path', () => {
  const d = `sha256:${'a'.repeat(64)}`;
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d, size: 10, artifactType: 'x/y', annotations: { a: 'b', n: 1 } },
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:short', size: 1 },
        null,
      ],
    }),
  );
  assert.deepEqual(parseReferrersBody(body, 'w', {}), {
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d, size: 10, artifactType: 'x/y', annotations: { a: 'b' } }],
    malformed: 2,
  });
  assert.throws(() => parseReferrersBody(Buffer.from('<html>'), 'w', {}), (err) => isSatelliteError(err, 'UPSTREAM_PROTOCOL'));
  assert.throws(() => parseReferrersBody(Buffer.from('{"manifests":{}}'), 'w', {}), (err) => isSatelliteError(err, 'UPSTREAM_PROTOCOL'));

  assert.equal(filtersApplied('artifactType', 'artifactType'), true);
  assert.equal(filtersApplied('annotation, ArtifactType', 'artifactType'), true);
  assert.equal(filtersApplied(undefined, 'artifactType'), false);
  assert.equal(filtersApplied('', 'artifactType'), false);

  const path = `/v2/a/b/referrers/${d}`;
  const from = new URL(`http://reg:5000${path}?artifactType=x`);
  assert.equal(nextReferrersPage(`<${path}?last=z&n=1>; rel="next"`, from, '', path), `${path}?last=z&n=1`);
  assert.equal(nextReferrersPage(`<http://reg:5000${path}?last=z>; rel=next`, from, '', path), `${path}?last=z`);
  assert.equal(nextReferrersPage([`<${path}?p=1>; rel="prev"`, `<${path}?p=3>; rel="next"`], from, '', path), `${path}?p=3`);
  assert.equal(nextReferrersPage(`<${path}?p=1>; rel="prev", <${path}?p=3>; rel="next"`, from, '', path), `${path}?p=3`);
  // Another origin, another path, another repository: not followed (our credentials go with it).
  assert.equal(nextReferrersPage(`<http://evil:5000${path}?last=z>; rel="next"`, from, '', path), undefined);
  assert.equal(nextReferrersPage(`</v2/other/referrers/${d}?last=z>; rel="next"`, from, '', path), undefined);
  assert.equal(nextReferrersPage(`</v2/a/b/tags/list>; rel="next"`, from, '', path), undefined);
  assert.equal(nextReferrersPage(undefined, from, '', path), undefined);
  // A registry under a path prefix: the prefix is kept out of the returned path.
  const prefixed = new URL(`http://reg/registry${path}`);
  assert.equal(nextReferrersPage(`</registry${path}?last=z>; rel="next"`, prefixed, '/registry', path), `${path}?last=z`);
});
