import { spawn } from 'node:child_process';
import type { Satellite } from '../helpers/satellite.ts';

/** http://127.0.0.1:PORT/metrics of a satellite, from its "metrics listening" log line. */
export async function metricsUrl(sat: Pick<Satellite, 'waitForLog'>): Promise<string> {
  const m = await sat.waitForLog(/"msg":"metrics listening"/);
  const port = (JSON.parse(m.input) as { port: number }).port;
  return `http://127.0.0.1:${port}/metrics`;
}

/** GET /metrics; the text body (fails on any status but 200). */
export async function scrape(url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(url, { headers });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`metrics answered ${res.status}: ${body}`);
  return body;
}

/**
 * Runs Debian's `promtool check metrics` over the exposition: the format parses and the names
 * follow Prometheus conventions. Resolves with promtool's output; rejects when it complains.
 */
export function promtoolCheck(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', (err) => reject(new Error(`promtool not runnable (apt-get install prometheus): ${err.message}`)));
    child.on('close', (code) => (code === 0 && out.trim() === '' ? resolve(out) : reject(new Error(`promtool check metrics (exit ${code}):\n${out}`))));
    child.stdin.end(text);
  });
}

/** Scrapes until `ok` holds for the samples (10 s at most); the last samples either way. */
export async function scrapeUntil(url: string, ok: (m: Map<string, number>) => boolean, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const m = parseMetrics(await scrape(url, headers));
    if (ok(m) || Date.now() > deadline) return m;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Samples of a text exposition: `name{a="x",b="y"}` (labels sorted) -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`).sort();
    out.set(labels.length ? `${m[1]}{${labels.join(',')}}` : m[1]!, Number(m[3]));
  }
  return out;
}

/** The sample's value; fails when the exposition lacks it. */
export function value(samples: Map<string, number>, key: string): number {
  const v = samples.get(key);
  if (v === undefined) throw new Error(`no sample ${key}; have:\n${[...samples.keys()].filter((k) => k.startsWith(key.split('{')[0]!)).join('\n')}`);
  return v;
}
