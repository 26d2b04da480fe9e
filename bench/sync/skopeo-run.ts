import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from '../../test/helpers/bin.ts';
import { defer, type Teardown } from '../../test/helpers/cleanup.ts';
import { startDockerRegistry } from '../../test/helpers/docker-registry.ts';
import { startFaultProxy } from '../../test/helpers/fault-proxy.ts';
import { spawnPeer } from '../../test/helpers/process.ts';
import { makeTempDir } from '../../test/helpers/tmp.ts';
import { cpuSeconds, CpuMeter, readMem } from '../lib/proc-stats.ts';
import { ScriptTeardown } from '../lib/teardown.ts';
import { countReplicated, type ImageSet } from './image-set.ts';
import { cpuShares, seconds, type RunResult } from './result.ts';

export interface SkopeoRunOptions {
  upstreamHost: string;
  upstreamPid: number;
  set: ImageSet;
  cutBytes: number | undefined;
  /** WAN emulation in the proxy: ms added each way, and one shared rate upstream->tool. */
  wan?: { delayMs: number; rateBytesPerSec?: number } | undefined;
  /** --retry-times; undefined = skopeo's default (no retries). */
  retryTimes: number | undefined;
  timeoutMs: number;
}

/**
 * `skopeo sync --src yaml`: one process for the whole set, as an operator would mirror it. The
 * registry key is the proxy, so every byte skopeo reads is counted there.
 */
function syncYaml(sourceHost: string, set: ImageSet): string {
  const lines = [`${JSON.stringify(sourceHost)}:`, '  tls-verify: false', '  images:'];
  for (const img of set.images) lines.push(`    ${JSON.stringify(img.repository)}: [${JSON.stringify(img.tag)}]`);
  return `${lines.join('\n')}\n`;
}

/** GNU time -v's report: maximum RSS, CPU, and how the command ended. */
function parseGnuTime(output: string): { maxRssKiB: number; cpuSec: number; exit: string } {
  const num = (label: string) => Number(new RegExp(`^\\s*${label}:\\s*([\\d.]+)`, 'm').exec(output)?.[1] ?? Number.NaN);
  const status = /^\s*Exit status:\s*(\d+)/m.exec(output)?.[1];
  const signal = /Command terminated by signal (\d+)/.exec(output)?.[1];
  return {
    maxRssKiB: num('Maximum resident set size \\(kbytes\\)'),
    cpuSec: num('User time \\(seconds\\)') + num('System time \\(seconds\\)'),
    exit: signal ? `killed by signal ${signal}` : status !== undefined ? `exit status ${status}` : 'unknown exit',
  };
}

/** The pids `pid` has forked (Linux ≥ 3.5 with CONFIG_PROC_CHILDREN). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * skopeo sync of the set into an empty docker-registry, through a fault proxy in front of the
 * upstream, under GNU time for its peak RSS. Runs as `setpriv --pdeathsig KILL -- time -v setpriv
 * --pdeathsig KILL -- skopeo ...`: neither outlives this script. On timeout skopeo itself is killed,
 * so time still reports. With cuts: --keep-going, so one image that cannot get through does not
 * stop the others, and `--retry-times`.
 */
export async function runSkopeo(parent: Teardown, opts: SkopeoRunOptions): Promise<RunResult> {
  const t = new ScriptTeardown();
  defer(parent, () => t.run());
  try {
    const skopeo = requireBinary('skopeo');
    const time = requireBinary('time');
    const setpriv = requireBinary('setpriv');
    const proxy = await startFaultProxy(t, { target: opts.upstreamHost, ...(opts.cutBytes ? { cutEveryBytes: opts.cutBytes } : {}), ...opts.wan });
    const dest = await startDockerRegistry(t);
    const yamlFile = join(await makeTempDir(t, 'hs-bench-skopeo-'), 'sync.yaml');
    await writeFile(yamlFile, syncYaml(proxy.host, opts.set));
    const args = ['--insecure-policy', 'sync', '--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false'];
    if (opts.retryTimes !== undefined) args.push('--retry-times', String(opts.retryTimes));
    if (opts.cutBytes) args.push('--keep-going');
    // Without --scoped, bench/imgN:v1 lands as <dest>/bench/imgN:v1 (the last path element is kept).
    args.push(yamlFile, `${dest.host}/bench`);

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CONTAINERS_REGISTRIES_CONF: '/dev/null',
      REGISTRY_AUTH_FILE: '/nonexistent/harbor-satellite-bench/auth.json',
    };
    const destCpuBefore = cpuSeconds(dest.proc.pid!);
    // skopeo (with time) counts as the meter's "clients": children of this script reaped by the end.
    const meter = new CpuMeter([opts.upstreamPid, dest.proc.pid!]);
    const started = process.hrtime.bigint();
    const proc = spawnPeer(time, ['-v', setpriv, '--pdeathsig', 'KILL', '--', skopeo, ...args], { env, maxLines: 5000, name: 'skopeo' });
    defer(t, () => proc.stop(2000));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      for (const child of childrenOf(proc.pid!)) process.kill(child, 'SIGKILL');
    }, opts.timeoutMs);
    const exit = await proc.exited;
    clearTimeout(timer);
    const wallSec = seconds(started);
    const bytesFromUpstream = proxy.bytesFromTarget();
    const split = meter.stop();

    const output = proc.output();
    const gnu = parseGnuTime(output);
    const destMem = readMem(dest.proc.pid!);
    const destCpuSec = cpuSeconds(dest.proc.pid!) - destCpuBefore;
    const images = await countReplicated(dest.url, opts.set);
    const notes = [`skopeo ${gnu.exit}${timedOut ? ` (killed at the ${opts.timeoutMs / 1000} s limit)` : ''}`];
    const errors = output.split('\n').filter((l) => /level=(error|fatal)|^Error|Error:/.test(l));
    if (errors.length > 0) notes.push(`last error: ${errors.at(-1)!.slice(0, 300)}`);
    const retries = output.split('\n').filter((l) => /[Rr]etrying/.test(l)).length;
    if (opts.retryTimes !== undefined) notes.push(`${retries} retry message(s) in its output`);
    if (exit.code !== 0 && images === opts.set.images.length) notes.push('every image arrived despite the exit status');
    return {
      finished: !timedOut && exit.code === 0 && gnu.exit === 'exit status 0' && images === opts.set.images.length,
      images,
      wallSec,
      bytesFromUpstream,
      connections: proxy.connections(),
      cuts: proxy.cuts(),
      peakRssKiB: gnu.maxRssKiB,
      cpuSec: gnu.cpuSec,
      cpu: cpuShares(split, opts.upstreamPid),
      dest: { peakRssKiB: destMem.hwmKiB, cpuSec: destCpuSec },
      output,
      notes,
    };
  } finally {
    await t.run();
  }
}
