import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

/**
 * Runs `command` under script(1) (a pty) as `timeout LIMIT command`, and ends it the way timeout(1)
 * does when its time is up, but as soon as `ready` says so: SIGALRM makes timeout act as if the
 * limit had passed (it sends SIGTERM to the command's process group). Resolves with the output.
 */
function runInPtyUntil(command: string, limitSeconds: number, ready: (out: string) => Promise<boolean>): Promise<{ out: string; readyAfterMs: number | undefined }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.INVOCATION_ID;
  const started = Date.now();
  // script runs the command with sh -c; exec keeps the shell's pid ($$) for timeout.
  const child = spawn('script', ['-qec', `echo "hs-timeout-pid $$"; exec timeout ${limitSeconds} ${command}`, '/dev/null'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let readyAfterMs: number | undefined;
  let checking = false;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    void check();
  });
  child.stderr.resume();
  const poll = setInterval(() => void check(), 200);
  async function check(): Promise<void> {
    if (checking || readyAfterMs !== undefined) return;
    checking = true;
    try {
      if (!(await ready(out.replace(/\r/g, '')))) return;
      readyAfterMs = Date.now() - started;
      const pid = Number(/hs-timeout-pid (\d+)/.exec(out)?.[1]);
      if (pid > 0 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'timeout') process.kill(pid, 'SIGALRM');
    } catch {
      // not ready yet (or the process already left); the limit still ends it
    } finally {
      checking = false;
    }
  }
  return new Promise((resolve) => {
    child.on('close', () => {
      clearInterval(poll);
      resolve({ out: out.replace(/\r/g, ''), readyAfterMs });
    });
  });
}

/** The registry port once "registry listening" is logged and the banner is out, else undefined. */
function listeningPort(out: string): string | undefined {
  const line = out.split('\n').find((l) => l.includes('"msg":"registry listening"'));
  return line && /see the state: /.test(out) ? /"port":(\d+)/.exec(line)?.[1] : undefined;
}

/** True once the satellite's start-up sync run has finished (after it, nothing runs for minutes). */
async function startRunDone(out: string): Promise<boolean> {
  const port = listeningPort(out);
  if (!port) return false;
  const res = await fetch(`http://127.0.0.1:${port}/_satellite/status`);
  const status = (await res.json()) as { sync?: { running: boolean; lastRun?: { finishedAt?: string } | null } };
  return status.sync?.running === false && Boolean(status.sync.lastRun?.finishedAt);
}

test('serve in a terminal prints where it listens and what to try next; no "sync finished" without a desired state', async (t) => {
  const dir = await makeTempDir(t, 'hs-first-hour-');
  const config = join(dir, 'satellite.json');
  await writeFile(config, JSON.stringify({ dataDir: join(dir, 'data'), registry: { listen: { host: '127.0.0.1', port: 0 } } }));
  // script(1) gives the satellite a pty; timeout(1) stops it (SIGTERM) once it has started and its
  // start-up sync run (the one that would say "sync finished") is over.
  const cmd = `'${process.execPath}' '${join(REPO_ROOT, 'src', 'cli', 'satellite.ts')}' serve --config '${config}'`;
  const { out, readyAfterMs } = await runInPtyUntil(cmd, 60, startRunDone);
  t.diagnostic(`started and its start-up run done after ${readyAfterMs} ms`);
  assert.ok(readyAfterMs !== undefined, `stopped by the 60 s limit, not once ready:\n${out}`);
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

test('npm start with the embedded defaults prints the banner with npm commands, then stops on SIGTERM', async (t) => {
  const dir = await makeTempDir(t, 'hs-first-hour-npm-');
  const dataDir = join(dir, 'data');
  // The defaults as shipped, but for the data dir and a free port (a test must not take 8585); a
  // throwaway HOME keeps npm's cache and logs out of the user's.
  const env = `HOME='${dir}' npm_config_update_notifier=false SATELLITE_DATA_DIR='${dataDir}' SATELLITE_LISTEN=127.0.0.1:0`;
  // script(1) gives npm a pty (the banner is for terminals); timeout(1) sends npm SIGTERM, which npm
  // passes on, once the satellite has started and its start-up sync run is over.
  const { out, readyAfterMs } = await runInPtyUntil(`env ${env} npm start`, 90, startRunDone);
  t.diagnostic(`started through npm and its start-up run done after ${readyAfterMs} ms`);
  assert.ok(readyAfterMs !== undefined, `stopped by the 90 s limit, not once ready:\n${out}`);
  const listening = out.split('\n').find((l) => l.includes('"msg":"registry listening"'));
  const port = listening ? /"port":(\d+)/.exec(listening)?.[1] : undefined;
  assert.ok(port, `registry started:\n${out}`);
  assert.match(out, /^> harbor-satellite@\S+ start$/m, 'run through npm');
  assert.match(out, new RegExp(`Harbor Satellite: registry on http://127\\.0\\.0\\.1:${port} \\(data in ${dataDir}\\)`));
  assert.match(out, new RegExp(`push an image: +skopeo copy --dest-tls-verify=false oci:\\./my-image:latest docker://127\\.0\\.0\\.1:${port}/demo/app:1`));
  assert.match(out, new RegExp(`pull it back: +skopeo copy --src-tls-verify=false docker://127\\.0\\.0\\.1:${port}/demo/app:1 oci:\\./pulled:latest`));
  assert.match(out, new RegExp(`see the state: +npm run satellite -- status --socket ${dataDir}/run/satellite\\.sock`));
  assert.doesNotMatch(out, /"msg":"sync finished"/);
  // npm passes the SIGTERM on and exits at once; the pty closes with it, so the satellite's
  // "stopping" line is often lost, and a satellite left on a closed pty would die of SIGHUP
  // instead. Its admin socket tells them apart: a graceful stop (SIGTERM handled) closes the
  // server, which removes the socket file; a death by SIGHUP leaves it behind.
  const pid = Number(/"pid":(\d+)/.exec(listening!)?.[1]);
  const deadline = Date.now() + 30_000;
  while (running(pid) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
  assert.ok(!running(pid), `satellite ${pid} stopped`);
  const logged = /"signal":"SIGTERM".*"msg":"stopping"/.test(out);
  t.diagnostic(`"stopping" line ${logged ? 'captured' : 'lost with the pty'}`);
  assert.ok(logged || !existsSync(join(dataDir, 'run', 'satellite.sock')), 'the satellite got the SIGTERM through npm and stopped gracefully (admin socket removed)');
});

/** Alive and not a zombie (a reaped or exited process is not running). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
