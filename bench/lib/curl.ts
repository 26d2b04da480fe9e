import type { Commands } from './commands.ts';

export interface Download {
  status: number;
  bytes: number;
  /** curl's time_total for this transfer. */
  seconds: number;
}

export interface DownloadRound {
  downloads: Download[];
  /** From spawning the first curl to the exit of the last. */
  wallSec: number;
  bytes: number;
}

export interface CurlOptions {
  /** curl --limit-rate, e.g. "12M": a client that reads slowly, so the server sees backpressure. */
  limitRate?: string;
  maxTimeSec: number;
}

const WRITE_OUT = 'RESULT %{http_code} %{size_download} %{time_total}\\n';

/**
 * `count` parallel `curl -o /dev/null` GETs of one URL, each a separate process: the clients'
 * memory and buffers are never the server's. Rejects unless every one got `expectBytes` with 200.
 */
export async function curlParallel(
  cmds: Commands,
  url: string,
  count: number,
  expectBytes: number,
  opts: CurlOptions,
): Promise<DownloadRound> {
  const args = ['-sS', '-o', '/dev/null', '--max-time', String(opts.maxTimeSec), '-w', WRITE_OUT];
  if (opts.limitRate) args.push('--limit-rate', opts.limitRate);
  args.push(url);
  const started = process.hrtime.bigint();
  const results = await Promise.all(
    Array.from({ length: count }, () => cmds.run('curl', args, (opts.maxTimeSec + 10) * 1000)),
  );
  const wallSec = Number(process.hrtime.bigint() - started) / 1e9;
  const downloads = results.map(({ output }) => {
    const m = /RESULT (\d+) (\d+) ([\d.]+)/.exec(output);
    if (!m) throw new Error(`curl ${url}: no result line in:\n${output}`);
    return { status: Number(m[1]), bytes: Number(m[2]), seconds: Number(m[3]) };
  });
  const bad = downloads.filter((d) => d.status !== 200 || d.bytes !== expectBytes);
  if (bad.length > 0) {
    throw new Error(`curl ${url}: ${bad.length}/${count} downloads incomplete (expected 200 and ${expectBytes} B): ${JSON.stringify(bad.slice(0, 3))}`);
  }
  return { downloads, wallSec, bytes: downloads.reduce((sum, d) => sum + d.bytes, 0) };
}
