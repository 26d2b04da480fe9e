import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';

function run(file: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    delete env.INVOCATION_ID;
    execFile(file, args, { cwd: REPO_ROOT, timeout: timeoutMs, env }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

test('serve in a terminal prints where it listens and what to try next; no "sync finished" without a desired state', async (t) => {
  const dir = await makeTempDir(t, 'hs-first-hour-');
  const config = join(dir, 'satellite.json');
  await writeFile(config, JSON.stringify({ dataDir: join(dir, 'data'), registry: { listen: { host: '127.0.0.1', port: 0 } } }));
  // script(1) gives the satellite a pty; timeout(1) stops it (SIGTERM) once it had time to start.
  const cmd = `timeout 15 '${process.execPath}' '${join(REPO_ROOT, 'src', 'cli', 'satellite.ts')}' serve --config '${config}'`;
  const r = await run('script', ['-qec', cmd, '/dev/null'], 60_000);
  const out = r.stdout.replace(/\r/g, '');
  const port = /"msg":"registry listening"/.test(out) ? /"port":(\d+)/.exec(out.split('\n').find((l) => l.includes('registry listening'))!)?.[1] : undefined;
  assert.ok(port, `registry started:\n${out}`);
  assert.match(out, new RegExp(`Harbor Satellite: registry on http://127\\.0\\.0\\.1:${port} \\(data in ${dir}/data\\)`));
  assert.match(out, new RegExp(`push an image: +skopeo copy --dest-tls-verify=false oci:\\./my-image:latest docker://127\\.0\\.0\\.1:${port}/demo/app:1`));
  assert.match(out, new RegExp(`see the state: +satellite status --config ${config}`));
  assert.doesNotMatch(out, /"msg":"sync finished"/);
  assert.match(out, /"msg":"satellite stopped"/);
});

test('serve with a missing registration token file says so in one line and exits 78', async (t) => {
  const dir = await makeTempDir(t, 'hs-first-hour-');
  const config = join(dir, 'satellite.json');
  await writeFile(
    config,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      registry: { listen: { host: '127.0.0.1', port: 0 } },
      control: { groundControlUrl: 'http://127.0.0.1:9', registrationTokenFile: join(dir, 'no-such-token') },
    }),
  );
  const r = await run(process.execPath, [join(REPO_ROOT, 'src', 'cli', 'satellite.ts'), 'serve', '--config', config], 30_000);
  assert.equal(r.code, 78);
  assert.equal(r.stderr, `satellite: control.registrationTokenFile: cannot read ${join(dir, 'no-such-token')} (ENOENT)\n`);
  assert.doesNotMatch(r.stdout, /"stack"/, 'no stack trace in the log either');
});

test('runtime show warns about docker only when docker is enabled', async (t) => {
  const dir = await makeTempDir(t, 'hs-first-hour-');
  const config = join(dir, 'satellite.json');
  const write = (runtimes: object) =>
    writeFile(config, JSON.stringify({ dataDir: join(dir, 'data'), runtimes: { upstreams: ['registry.example.com', 'docker.io'], ...runtimes } }));
  const show = () => run(process.execPath, [join(REPO_ROOT, 'src', 'cli', 'satellite.ts'), 'runtime', 'show', '--config', config, '--root', join(dir, 'root')], 30_000);
  await write({ containerd: { enabled: true } });
  const without = await show();
  assert.equal(without.code, 0, without.stderr);
  assert.match(without.stdout, /^docker \(not enabled\)$/m);
  assert.doesNotMatch(without.stdout, /warning: docker/);
  await write({ containerd: { enabled: true }, docker: { enabled: true } });
  assert.match((await show()).stdout, /warning: docker uses registry-mirrors for Docker Hub/);
});
