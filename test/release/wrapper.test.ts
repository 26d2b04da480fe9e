// bin/<command> as stage.ts writes it: the flags and environment of scripts/release/runtime.ts reach
// the node it execs, and a MALLOC_* variable set by the caller (or the unit) wins.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'node:test';
import { NODE_FLAGS, RUNTIME_ENV, wrapperEnvLines } from '../../scripts/release/runtime.ts';
import { wrapper } from '../../scripts/release/stage.ts';
import { makeTempDir } from '../helpers/tmp.ts';

async function fakeRelease(t: test.TestContext): Promise<string> {
  const root = await makeTempDir(t, 'hs-wrapper-');
  await mkdir(join(root, 'bin'));
  await mkdir(join(root, 'node', 'bin'), { recursive: true });
  // Stands in for node: prints its arguments and the malloc environment it was given.
  await writeFile(join(root, 'node', 'bin', 'node'), '#!/bin/sh\nprintf "%s\\n" "$@"\nenv | grep "^MALLOC_" | sort\n');
  await chmod(join(root, 'node', 'bin', 'node'), 0o755);
  await writeFile(join(root, 'bin', 'satellite'), await wrapper('satellite'));
  await chmod(join(root, 'bin', 'satellite'), 0o755);
  return root;
}

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...extra };
  return env;
}

test('the satellite wrapper runs node with the shipped flags and malloc environment', async (t) => {
  const root = await fakeRelease(t);
  const out = execFileSync(join(root, 'bin', 'satellite'), ['serve', '--config', 'x y.json'], { env: cleanEnv(), encoding: 'utf8' }).trimEnd().split('\n');
  const env = Object.entries(RUNTIME_ENV.satellite).map(([k, v]) => `${k}=${v}`).sort();
  assert.deepEqual(out, [...NODE_FLAGS.satellite, join(root, 'lib', 'satellite.mjs'), 'serve', '--config', 'x y.json', ...env]);
  assert.ok(env.length > 0 && NODE_FLAGS.satellite.length > 0);
});

test('a malloc variable set outside the wrapper wins', async (t) => {
  const root = await fakeRelease(t);
  const name = Object.keys(RUNTIME_ENV.satellite)[0]!;
  const out = execFileSync(join(root, 'bin', 'satellite'), [], { env: cleanEnv({ [name]: '7' }), encoding: 'utf8' });
  assert.match(out, new RegExp(`^${name}=7$`, 'm'));
});

test('the wrapper refuses runtime environment that is not a numeric MALLOC_ tunable', () => {
  assert.equal(wrapperEnvLines({ MALLOC_ARENA_MAX: '2' }), 'export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"\n');
  assert.throws(() => wrapperEnvLines({ PATH: '/tmp' }), /only MALLOC_/);
  assert.throws(() => wrapperEnvLines({ MALLOC_ARENA_MAX: '$(id)' }), /only MALLOC_/);
});
