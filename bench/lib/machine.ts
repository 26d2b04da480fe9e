import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

/** First line a command prints (stdout or stderr), for version strings. */
export function firstLine(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...(cwd ? { cwd } : {}) });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]?.trim() || 'unknown';
}

/** What a reader needs to compare figures: date, CPU, kernel, and the versions of everything run. */
export function machineInfo(repoRoot: string, satelliteVersion: string): string[] {
  const curl = firstLine('curl', ['--version']).split(' ').slice(0, 2).join(' ');
  const wrk = firstLine('wrk', ['-v']).split(' ').slice(0, 2).join(' ');
  return [
    `date: ${new Date().toISOString()}`,
    `machine: ${firstLine('nproc', [])} vCPU (nproc), ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, Linux ${firstLine('uname', ['-r'])}`,
    `node: ${process.version}; satellite ${satelliteVersion} at ${firstLine('git', ['describe', '--always', '--dirty'], repoRoot)}`,
    `registry: ${firstLine('docker-registry', ['--version'])}`,
    `clients: ${wrk}, ${curl}`,
  ];
}
