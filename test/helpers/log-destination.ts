import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { requireBinary } from './bin.ts';
import { defer, type Teardown } from './cleanup.ts';
import { freePort } from './ports.ts';
import { deepMerge, REPO_ROOT } from './satellite.ts';
import { GC_ENTRY, TEST_ADMIN_TOKEN, TEST_UPSTREAM } from './groundcontrol.ts';
import { makeTempDir } from './tmp.ts';
import { NODE_FLAGS, RUNTIME_ENV } from '../../scripts/release/runtime.ts';

const run = promisify(execFile);

/**
 * Helpers for the log-destination tests: the program's stdout goes where the test says (a file on
 * a full tmpfs, a pipe nobody reads), so readiness is found by polling HTTP on a port picked here
 * instead of reading the "listening" log line.
 */

/** A tmpfs of 1 MiB mounted by the test (root only), filled to the last byte; unmounted after. */
export interface FullTmpfs {
  dir: string;
  /** Deletes the filler: the filesystem has room again. */
  makeRoom(): Promise<void>;
}

export async function mountFullTmpfs(t: Teardown): Promise<FullTmpfs> {
  if (process.getuid?.() !== 0) throw new Error('the full-disk log tests mount a tmpfs and must run as root');
  const dir = await makeTempDir(t, 'hs-log-tmpfs-');
  await run(requireBinary('mount'), ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  // Registered after makeTempDir: runs before the directory is removed, and after the program
  // (started later) has stopped. Lazy, so a straggling open file cannot keep it mounted.
  defer(t, () => run(requireBinary('umount'), ['-l', dir]));
  const filler = join(dir, 'filler');
  await writeFile(filler, Buffer.alloc(2 * 1024 * 1024, 0x61)).then(
    () => {
      throw new Error('a 1 MiB tmpfs took 2 MiB');
    },
    (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOSPC') throw err;
    },
  );
  return { dir, makeRoom: () => rm(filler) };
}

/** A satellite or Ground Control whose stdout is `stdout`; stderr is kept for failure messages. */
export interface ServiceWithStdout {
  child: ChildProcess;
  pid: number;
  /** http://127.0.0.1:PORT (registry for the satellite, API for Ground Control). */
  url: string;
  /** The satellite's http://127.0.0.1:PORT/metrics (its stdout may be unread: the port is chosen here). */
  metricsUrl?: string;
  stderr(): string;
  /** SIGTERM; resolves with the exit code, or throws if it has not exited after timeoutMs. */
  stop(timeoutMs?: number): Promise<number | null>;
}

export interface StartWithStdoutOptions {
  program: 'satellite' | 'groundcontrol';
  /** An open fd (a file), or 'pipe' (child.stdout, which the test may leave unread). */
  stdout: number | 'pipe';
  config?: Record<string, unknown>;
}

export async function startWithStdout(t: Teardown, opts: StartWithStdoutOptions): Promise<ServiceWithStdout> {
  const dataDir = await makeTempDir(t, `hs-log-${opts.program}-data-`);
  const configDir = await makeTempDir(t, `hs-log-${opts.program}-config-`);
  const port = await freePort();
  // As shipped (the release wrapper's node flags and malloc settings): the memory bounds asserted
  // here are the product's, not those of Node's defaults (a young generation of up to 2 × 16 MiB).
  const env: NodeJS.ProcessEnv = { ...RUNTIME_ENV[opts.program], ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.INVOCATION_ID;
  let defaults: Record<string, unknown>;
  let entry: string;
  let readyPath: string;
  let metricsPort: number | undefined;
  if (opts.program === 'satellite') {
    entry = join(REPO_ROOT, 'src', 'cli', 'satellite.ts');
    metricsPort = await freePort();
    defaults = {
      dataDir,
      log: { level: 'info' },
      registry: { listen: { host: '127.0.0.1', port }, anonymousPush: true },
      metrics: { listen: { host: '127.0.0.1', port: metricsPort } },
    };
    readyPath = '/v2/';
  } else {
    entry = GC_ENTRY;
    const brokerPort = await freePort();
    defaults = {
      dataDir,
      log: { level: 'info' },
      api: { listen: { host: '127.0.0.1', port } },
      broker: { embedded: { host: '127.0.0.1', port: brokerPort } },
      upstream: TEST_UPSTREAM,
    };
    env.GROUNDCONTROL_ADMIN_TOKEN = TEST_ADMIN_TOKEN;
    readyPath = '/api/v1/healthz';
  }
  const configFile = join(configDir, `${opts.program}.json`);
  await mkdir(configDir, { recursive: true });
  await writeFile(configFile, JSON.stringify(deepMerge(defaults, opts.config ?? {}), null, 2));
  // setpriv --pdeathsig: the kernel kills it if the test process dies first.
  const child = spawn(requireBinary('setpriv'), ['--pdeathsig', 'KILL', '--', process.execPath, ...NODE_FLAGS[opts.program], entry, 'serve', '--config', configFile], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', opts.stdout, 'pipe'],
  });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    err = (err + s).slice(-20_000);
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let stopped: Promise<number | null> | undefined;
  const stop = (timeoutMs = 10_000): Promise<number | null> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(timeoutMs).then(() => 'timeout' as const)]);
      if (code === 'timeout') {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`${opts.program} did not exit within ${timeoutMs} ms of SIGTERM; stderr:\n${err}`);
      }
      return code;
    })();
    return stopped;
  };
  defer(t, () => stop().catch(() => undefined));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${opts.program} exited with ${child.exitCode}; stderr:\n${err}`);
    const res = await fetch(url + readyPath, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    if (res?.ok) break;
    if (Date.now() > deadline) throw new Error(`${opts.program} did not answer ${readyPath} within 30 s; stderr:\n${err}`);
    await sleep(200);
  }
  const metricsUrl = metricsPort === undefined ? undefined : `http://127.0.0.1:${metricsPort}/metrics`;
  return { child, pid: child.pid!, url, ...(metricsUrl ? { metricsUrl } : {}), stderr: () => err, stop };
}

/** Opens `file` for writing (truncated) and closes it after the test. */
export function openForWrite(t: Teardown, file: string): number {
  const fd = openSync(file, 'w');
  defer(t, () => closeSync(fd));
  return fd;
}

/** Resident set size of a process, from /proc. */
export function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  const kb = Number(/(\d+)/.exec(line ?? '')?.[1]);
  if (!Number.isFinite(kb)) throw new Error(`no VmRSS for pid ${pid}`);
  return kb * 1024;
}

/** `n` sequential GETs: every status and the median time in ms. */
export async function timedGets(url: string, n: number, headers: Record<string, string> = {}): Promise<{ statuses: number[]; medianMs: number; maxMs: number }> {
  const statuses: number[] = [];
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) }).catch(() => undefined);
    times.push(performance.now() - t0);
    statuses.push(res?.status ?? 0);
    await res?.arrayBuffer();
  }
  times.sort((a, b) => a - b);
  return { statuses, medianMs: times[Math.floor(times.length / 2)] ?? Infinity, maxMs: times.at(-1) ?? Infinity };
}

/** wrk against one URL: total requests and non-2xx/3xx answers and socket errors. */
export async function runWrk(url: string, seconds: number, connections = 4): Promise<{ requests: number; bad: number; output: string }> {
  if (!/^http:\/\/127\.0\.0\.1:\d+\//.test(url)) throw new Error(`wrk only against 127.0.0.1: ${url}`);
  const { stdout } = await run(requireBinary('wrk'), ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', url], { timeout: (seconds + 30) * 1000 });
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const socketErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { requests, bad: non2xx + socketErrors, output: stdout };
}
