import { fmt, formatTable, mib } from '../lib/table.ts';
import type { ImageSet } from './image-set.ts';
import type { RunResult } from './result.ts';

/** Targets from the issue: ≥ 1.2× skopeo's speed; < 5 % read beyond the set on a cut link. */
export const SPEED_TARGET = 1.2;
export const RESUME_OVERHEAD_TARGET = 0.05;

export interface Results {
  clean: { satellite: RunResult[]; skopeo: RunResult[] };
  /** The clean runs went through an emulated WAN (--wan-delay-ms / --wan-rate-mbit). */
  wan?: { delayMs: number; rateBytesPerSec?: number };
  cut?: { satellite: RunResult; skopeo: RunResult; cutBytes: number; retryTimes: number };
}

const median = (values: number[]): number => {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
};

/** Cores used by other processes above which a run is suspect (2 vCPU: a tenth of the machine). */
export const NOISY_CORES = 0.2;

const cores = (r: RunResult) => `upstream registry ${fmt(r.cpu.upstream, 2)} cores, this script (proxy) ${fmt(r.cpu.harness, 2)}, other processes ${fmt(r.cpu.other, 2)}`;

const mbps = (bytes: number, sec: number) => bytes / sec / 1e6;
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
const finishedText = (r: RunResult, count: number) => (r.finished ? `yes (${r.images}/${count} images)` : `did not finish (${r.images}/${count} images)`);

/** Medians over the runs of one tool, metric by metric. */
function summary(runs: RunResult[], setBytes: number) {
  const wall = median(runs.map((r) => r.wallSec));
  return {
    wall,
    mbps: mbps(setBytes, wall),
    ratio: median(runs.map((r) => r.bytesFromUpstream / setBytes)),
    rss: median(runs.map((r) => r.peakRssKiB)),
    cpu: median(runs.map((r) => r.cpuSec)),
    destRss: median(runs.map((r) => r.dest?.peakRssKiB ?? Number.NaN)),
    destCpu: median(runs.map((r) => r.dest?.cpuSec ?? Number.NaN)),
    finished: runs.filter((r) => r.finished).length,
  };
}

function cleanTable(res: Results, set: ImageSet): string[] {
  const sat = summary(res.clean.satellite, set.setBytes);
  const sko = summary(res.clean.skopeo, set.setBytes);
  const speedup = sko.wall / sat.wall;
  const n = res.clean.satellite.length;
  const table = formatTable(
    ['metric', 'satellite', 'skopeo sync', 'ratio (satellite / skopeo)', 'target'],
    [
      ['completed runs', `${sat.finished}/${n}`, `${sko.finished}/${res.clean.skopeo.length}`, '', 'all'],
      ['wall time (s)', fmt(sat.wall, 2), fmt(sko.wall, 2), fmt(sat.wall / sko.wall, 2), ''],
      ['speed (MB/s = set size / wall time)', fmt(sat.mbps), fmt(sko.mbps), `${fmt(speedup, 2)}×`, `≥ ${SPEED_TARGET}×: ${verdict(speedup >= SPEED_TARGET)}`],
      ['bytes from upstream / set size', fmt(sat.ratio, 3), fmt(sko.ratio, 3), fmt(sat.ratio / sko.ratio, 3), ''],
      ['peak RSS of the tool (MiB)', mib(sat.rss), mib(sko.rss), fmt(sat.rss / sko.rss, 2), ''],
      ['CPU time of the tool (s)', fmt(sat.cpu, 1), fmt(sko.cpu, 1), fmt(sat.cpu / sko.cpu, 2), ''],
      ['destination docker-registry peak RSS (MiB)', '— (own store)', mib(sko.destRss), '', 'for information'],
      ['destination docker-registry CPU time (s)', '— (own store)', fmt(sko.destCpu, 1), '', 'for information'],
    ],
  );
  const each = (runs: RunResult[]) => runs.map((r) => `${fmt(r.wallSec, 2)} s${r.cpu.other > NOISY_CORES ? ' (noisy)' : ''}`).join(', ');
  return [
    `Clean link: median of ${n} run(s) per tool, alternating which goes first, each into an empty store.`,
    '',
    table,
    '',
    `- each run: satellite ${each(res.clean.satellite)}; skopeo sync ${each(res.clean.skopeo)}`,
    `- satellite, last run: ${res.clean.satellite.at(-1)?.notes.join('; ') ?? ''}; ${cores(res.clean.satellite.at(-1)!)}`,
    `- skopeo, last run: ${res.clean.skopeo.at(-1)?.notes.join('; ') ?? ''}; ${cores(res.clean.skopeo.at(-1)!)}`,
  ];
}

function cutTable(cut: NonNullable<Results['cut']>, set: ImageSet): string[] {
  const { satellite: sat, skopeo: sko } = cut;
  const count = set.images.length;
  const satRatio = sat.bytesFromUpstream / set.setBytes;
  const resumeOk = sat.finished && satRatio - 1 < RESUME_OVERHEAD_TARGET;
  const table = formatTable(
    ['metric', 'satellite', 'skopeo sync', 'ratio (satellite / skopeo)', 'target'],
    [
      ['finished?', finishedText(sat, count), finishedText(sko, count), '', 'finish'],
      ['bytes from upstream / set size', fmt(satRatio, 3), fmt(sko.bytesFromUpstream / set.setBytes, 3), '', `satellite < ${1 + RESUME_OVERHEAD_TARGET}: ${verdict(resumeOk)}`],
      ['wall time (s)', fmt(sat.wallSec, 1), fmt(sko.wallSec, 1), sat.finished && sko.finished ? fmt(sat.wallSec / sko.wallSec, 2) : '', ''],
      ['connections / cut', `${sat.connections} / ${sat.cuts}`, `${sko.connections} / ${sko.cuts}`, '', ''],
      ['peak RSS of the tool (MiB)', mib(sat.peakRssKiB), mib(sko.peakRssKiB), '', ''],
    ],
  );
  return [
    `Link cut every ${fmt(cut.cutBytes / 1024 / 1024)} MiB (each connection is dropped after it has carried that much upstream->client); ` +
      `skopeo sync --retry-times ${cut.retryTimes} --keep-going; the satellite with its default retry settings.`,
    '',
    table,
    '',
    `- satellite: ${sat.notes.join('; ')}; ${cores(sat)}`,
    `- skopeo: ${sko.notes.join('; ')}; ${cores(sko)}`,
  ];
}

const wall = (r: RunResult) => `${fmt(r.wallSec, 2)} s${r.finished ? '' : ` (NOT finished: ${r.images} images)`}`;

/** Through the emulated WAN: each tool against the link floor (unique bytes / rate), and the unchanged run. */
function wanTable(res: Results, wan: NonNullable<Results['wan']>, set: ImageSet): string[] {
  const floor = wan.rateBytesPerSec ? set.setBytes / wan.rateBytesPerSec : Number.NaN;
  const med = (v: number[]) => median(v);
  // Medians of the runs that finished; the others are listed below.
  const sat = med(res.clean.satellite.filter((r) => r.finished).map((r) => r.wallSec));
  const sko = med(res.clean.skopeo.filter((r) => r.finished).map((r) => r.wallSec));
  const ratio = (s: number) => (Number.isFinite(floor) ? ` = ${fmt(s / floor, 2)}× the floor` : '');
  const unchanged = res.clean.satellite.map((r) => r.unchanged).filter((u) => u !== undefined);
  const rate = wan.rateBytesPerSec ? `${fmt((wan.rateBytesPerSec * 8) / 1e6)} Mbit/s shared` : 'no rate limit';
  const lines = [
    `WAN (emulated in the proxy): ${wan.delayMs} ms each way (RTT ${2 * wan.delayMs} ms), ${rate}; link floor ${Number.isFinite(floor) ? `${fmt(floor, 2)} s` : 'n/a'}`,
    '',
    '| start to applied (median) | satellite | skopeo sync | skopeo / satellite |',
    '|---|---|---|---|',
    `| ${set.images.length} images, ${fmt(set.setBytes / 1e6)} MB | ${fmt(sat, 2)} s${ratio(sat)} | ${fmt(sko, 2)} s${ratio(sko)} | ${fmt(sko / sat, 2)}× |`,
    `- each run: satellite ${res.clean.satellite.map(wall).join(', ')}; skopeo ${res.clean.skopeo.map(wall).join(', ')}`,
  ];
  if (unchanged.length > 0) {
    lines.push(
      `- satellite, nothing changed (second run, median): ${fmt(med(unchanged.map((u) => u.wallSec)), 2)} s, ` +
        `${Math.round(med(unchanged.map((u) => u.bytesFromUpstream)))} bytes from upstream, ${Math.round(med(unchanged.map((u) => u.requests)))} requests, ` +
        `${Math.round(med(unchanged.map((u) => u.newConnections)))} new connections; each: ${unchanged.map((u) => `${fmt(u.wallSec, 2)} s (resolve ${u.resolveMs ?? '?'} ms)`).join(', ')}`,
    );
  }
  return lines;
}

/** The Markdown report: the set, the clean-link table, the cut-link table. */
export function report(res: Results, set: ImageSet, header: string[]): string {
  const own = set.images[0]!.fixture.layers.slice(set.baseBytes > 0 ? 1 : 0).map((l) => fmt(l.size / 1024 / 1024)).join(' + ');
  const lines = [
    ...header,
    `- set: ${set.images.length} images (${set.images.map((i) => `${i.repository}:${i.tag}`).join(', ')}), each a shared ${fmt(set.baseBytes / 1024 / 1024)} MiB base layer + own layers of ${own} MiB; ` +
      `${set.distinctLayers} distinct layers, set size ${set.setBytes} bytes (${fmt(set.setBytes / 1e6)} MB) counting each blob and manifest once`,
    '- bytes from upstream: counted at a TCP proxy in front of the upstream docker-registry, both tools the same way (bodies and HTTP headers)',
  ];
  if (res.clean.satellite.length > 0) lines.push('', ...cleanTable(res, set));
  if (res.wan && res.clean.satellite.length > 0) lines.push('', ...wanTable(res, res.wan, set));
  if (res.cut) lines.push('', ...cutTable(res.cut, set));
  const all = [...res.clean.satellite, ...res.clean.skopeo, ...(res.cut ? [res.cut.satellite, res.cut.skopeo] : [])];
  const noisy = all.filter((r) => !(r.cpu.other <= NOISY_CORES));
  const worst = Math.max(0, ...all.map((r) => r.cpu.other));
  lines.push(
    '',
    noisy.length > 0
      ? `WARNING: other processes used more than ${NOISY_CORES} cores in ${noisy.length} of ${all.length} runs (up to ${fmt(worst, 2)}): re-run on a quiet machine.`
      : `Other processes stayed under ${NOISY_CORES} cores in every run (at most ${fmt(worst, 2)}).`,
  );
  return lines.join('\n');
}
