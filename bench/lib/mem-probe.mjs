// Where a process's peak RSS goes: load into the satellite with
//   --node-args="--import=./bench/lib/mem-probe.mjs"  --satellite-env MEM_PROBE_FILE=/tmp/probe.json
// Samples process.memoryUsage() every MEM_PROBE_MS (default 10) on an unref'd timer; at each new RSS
// high (by 1 MiB or more) it also keeps V8's heap spaces and /proc/self/smaps_rollup, and writes the
// breakdown at the highest RSS seen, and the one of the moment, as JSON to MEM_PROBE_FILE every 2 s
// and when the process exits. On SIGUSR2: the breakdown before and after a full collection (as
// "beforeGc"/"afterGc"), and with MEM_PROBE_SNAPSHOT_DIR set, a heap snapshot there first.
// "nativeAnon" is RSS anon minus V8's committed heap: array buffers as far as touched, glibc arenas
// (freed memory malloc keeps), wasm memory, compiler zones, thread stacks. arrayBuffers counts
// lmdb's 16 MiB shared read buffer whole though it is mostly never touched (not resident).
// A benchmark tool, never loaded by the product. Plain JavaScript: a .ts file here would load
// Node's type stripper (a wasm compiler) into the measured process, ~10 MiB of RSS.
import { readFileSync, writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';

const file = process.env.MEM_PROBE_FILE;
const everyMs = Number(process.env.MEM_PROBE_MS ?? 10);
const MiB = 1024 * 1024;
const mib = (n) => Math.round((n / MiB) * 10) / 10;

function rollup() {
  const out = {};
  for (const m of readFileSync('/proc/self/smaps_rollup', 'utf8').matchAll(/^(\w+):\s+(\d+) kB/gm)) out[m[1]] = Number(m[2]) / 1024;
  return out;
}

let peak;
let peakRss = 0;
const max = { heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
let samples = 0;
let gcCheck;

function sample() {
  const m = process.memoryUsage();
  samples++;
  for (const k of Object.keys(max)) max[k] = Math.max(max[k], m[k]);
  if (m.rss < peakRss + MiB) return;
  peakRss = m.rss;
  peak = breakdown(m);
}

function breakdown(m) {
  const r = rollup();
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, mib(s.space_size)]));
  const anon = (r.Anonymous ?? 0) * MiB;
  return {
    at: new Date().toISOString(),
    rss: mib(m.rss),
    rssAnon: mib(anon),
    rssFile: mib(m.rss - anon),
    heapTotal: mib(m.heapTotal),
    heapUsed: mib(m.heapUsed),
    external: mib(m.external),
    arrayBuffers: mib(m.arrayBuffers),
    nativeAnon: mib(anon - m.heapTotal),
    heapSpaces: spaces,
  };
}

function write() {
  if (!file) return;
  const maxMiB = Object.fromEntries(Object.entries(max).map(([k, v]) => [k, mib(v)]));
  writeFileSync(file, `${JSON.stringify({ pid: process.pid, samples, everyMs, atPeakRss: peak, maxima: maxMiB, ...gcCheck, now: breakdown(process.memoryUsage()) }, null, 2)}\n`);
}

function fullGc() {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  setFlagsFromString('--no-expose-gc');
  gc();
}

process.on('SIGUSR2', () => {
  const dir = process.env.MEM_PROBE_SNAPSHOT_DIR;
  const snapshot = dir ? writeHeapSnapshot(`${dir}/satellite-${process.pid}-${Date.now()}.heapsnapshot`) : undefined;
  const beforeGc = breakdown(process.memoryUsage());
  fullGc();
  gcCheck = { beforeGc, afterGc: breakdown(process.memoryUsage()), ...(snapshot ? { snapshot } : {}) };
  write();
});

setInterval(sample, everyMs).unref();
setInterval(write, 2000).unref();
process.on('exit', () => {
  sample();
  write();
});
