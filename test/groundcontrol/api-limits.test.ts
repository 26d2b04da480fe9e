import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGroundControl, TEST_ADMIN_TOKEN, type GroundControl } from '../helpers/groundcontrol.ts';

/** One API call from a chosen loopback source address (fetch cannot pick one). */
function callFrom(
  gc: GroundControl,
  from: string,
  method: string,
  path: string,
  body: string,
  token?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gc.apiPort,
        localAddress: from,
        method,
        path,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function countLines(gc: GroundControl, re: RegExp): number {
  return gc.logs().split('\n').filter((l) => re.test(l)).length;
}

test('API bodies nested absurdly deep answer 400, not 500 (issue 10 item 8)', async (t) => {
  const gc = await startGroundControl(t);
  const deep = (n: number) => `{"name":"web","images":${'['.repeat(n)}${']'.repeat(n)}}`;

  for (const [path, method, token] of [
    ['/api/v1/groups', 'POST', TEST_ADMIN_TOKEN],
    ['/api/v1/register', 'POST', undefined],
  ] as const) {
    const res = await callFrom(gc, '127.0.0.1', method, path, deep(100_000), token);
    assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'BODY_INVALID');
    assert.match(res.body.error.message, /nests deeper than 32 levels/);
  }
  // Just past the limit is refused the same way; a normal body still works.
  assert.equal((await callFrom(gc, '127.0.0.1', 'POST', '/api/v1/groups', deep(32), TEST_ADMIN_TOKEN)).status, 400);
  const ok = await callFrom(gc, '127.0.0.1', 'POST', '/api/v1/groups', JSON.stringify({ name: 'web', images: [{ repository: 'library/nginx', tags: ['1.26'] }] }), TEST_ADMIN_TOKEN);
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  assert.doesNotMatch(gc.logs(), /"msg":"request failed"/);
});

test('/register: refusals are rate-limited per address (429 + Retry-After) and logged as one summary line', async (t) => {
  const windowSeconds = 6;
  const logInterval = 3;
  const gc = await startGroundControl(t, {
    config: { api: { register: { maxFailuresPerAddress: 5, failureWindowSeconds: windowSeconds, logIntervalSeconds: logInterval } } },
  });
  const wrong = JSON.stringify({ token: 'hst_wrong-token-0123456789abcdef' });
  const tokenFor = async (name: string) => (await gc.api('POST', '/api/v1/satellites', { name })).body.registration.token as string;
  const valid = await tokenFor('late');
  const otherToken = await tokenFor('other');

  const first = Date.now();
  for (let i = 0; i < 5; i++) {
    const res = await callFrom(gc, '127.0.0.2', 'POST', '/api/v1/register', wrong);
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, 'TOKEN_UNKNOWN');
  }
  // Over budget: refused without looking at the token, even a valid one.
  for (const body of [wrong, JSON.stringify({ token: valid })]) {
    const res = await callFrom(gc, '127.0.0.2', 'POST', '/api/v1/register', body);
    assert.equal(res.status, 429);
    assert.equal(res.body.error.code, 'RATE_LIMITED');
    const retryAfter = Number(res.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= windowSeconds, `Retry-After ${res.headers['retry-after']}`);
  }
  // Another address is not affected.
  const other = await callFrom(gc, '127.0.0.3', 'POST', '/api/v1/register', JSON.stringify({ token: otherToken }));
  assert.equal(other.status, 200, JSON.stringify(other.body));

  // One summary line, no line per refusal.
  const line = await gc.waitForLog(/"count":7,.*"addresses":\{"127\.0\.0\.2":7\}.*"msg":"registrations refused"/, (logInterval + 5) * 1000);
  assert.match(line.input, /"reasons":\{"TOKEN_UNKNOWN":5,"RATE_LIMITED":2\}/);
  assert.equal(countLines(gc, /"msg":"request rejected"/), 0, 'refused registrations are not logged one by one');

  // After the window the address may register again (the valid token was never consumed).
  await sleep(Math.max(0, first + windowSeconds * 1000 + 200 - Date.now()));
  const again = await callFrom(gc, '127.0.0.2', 'POST', '/api/v1/register', JSON.stringify({ token: valid }));
  assert.equal(again.status, 200, JSON.stringify(again.body));

  // A flood of 300 wrong tokens produces a handful of lines, not 300.
  const before = countLines(gc, /"msg":"registrations refused"/);
  const started = Date.now();
  await Promise.all(Array.from({ length: 300 }, () => callFrom(gc, '127.0.0.4', 'POST', '/api/v1/register', wrong)));
  const seconds = (Date.now() - started) / 1000;
  await sleep((logInterval + 1) * 1000);
  const lines = countLines(gc, /"msg":"registrations refused"/) - before;
  assert.ok(lines >= 1 && lines <= Math.ceil(seconds / logInterval) + 2, `${lines} summary lines for 300 refusals in ${seconds.toFixed(1)} s`);
});
