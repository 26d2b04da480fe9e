import type { Commands } from './commands.ts';

export interface WrkOptions {
  url: string;
  threads: number;
  connections: number;
  durationSec: number;
  headers?: Record<string, string>;
}

export interface WrkResult {
  requestsPerSec: number;
  /** Bytes per second of responses (wrk counts headers too). */
  transferPerSec: number;
  requests: number;
  latencyMs: { avg: number; max: number; p50: number; p75: number; p90: number; p99: number };
  /** Responses that were not 2xx or 3xx: a benchmark of errors is not a benchmark. */
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
// wrk's format_binary divides by 1024 and prints KB/MB/GB.
const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`wrk: cannot read the time ${text}`);
  return Number(m[1]) * TIME_UNITS[m[2]!]!;
}

function need(output: string, regex: RegExp, what: string): RegExpExecArray {
  const m = regex.exec(output);
  if (!m) throw new Error(`wrk: no ${what} in its output:\n${output}`);
  return m;
}

/** Reads wrk 4.x output run with --latency. */
export function parseWrk(output: string): WrkResult {
  const lat = need(output, /^\s*Latency\s+(\S+)\s+\S+\s+(\S+)/m, 'latency line');
  const pct = (p: string) => ms(need(output, new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm'), `${p}% latency`)[1]!);
  const transfer = need(output, /^Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB|TB)/m, 'Transfer/sec');
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  return {
    requestsPerSec: Number(need(output, /^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec')[1]),
    transferPerSec: Number(transfer[1]) * SIZE_UNITS[transfer[2]!]!,
    requests: Number(need(output, /^\s*(\d+) requests in/m, 'request count')[1]),
    latencyMs: { avg: ms(lat[1]!), max: ms(lat[2]!), p50: pct('50'), p75: pct('75'), p90: pct('90'), p99: pct('99') },
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0),
    socketErrors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
    },
  };
}

/** `wrk -tT -cC -dDs --latency [-H ...] URL`, parsed. */
export async function runWrk(cmds: Commands, opts: WrkOptions): Promise<WrkResult> {
  const args = ['-t', String(opts.threads), '-c', String(opts.connections), '-d', `${opts.durationSec}s`, '--latency'];
  for (const [name, value] of Object.entries(opts.headers ?? {})) args.push('-H', `${name}: ${value}`);
  args.push(opts.url);
  const { output } = await cmds.run('wrk', args, (opts.durationSec + 30) * 1000);
  return parseWrk(output);
}
