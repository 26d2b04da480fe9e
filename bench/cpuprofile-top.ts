#!/usr/bin/env node
// Where a V8 CPU profile spent its time: `node bench/cpuprofile-top.ts FILE.cpuprofile [N]`.
// Make one with `node bench/serve.ts --node-args "--cpu-prof --cpu-prof-dir=DIR"` (written when
// the satellite exits). Prints the top N functions by self time and the self time per package.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** node_modules/<pkg>, node:internal, the repository's own folders, or V8's pseudo-frames. */
function bucket(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const file = relative(process.cwd(), url.replace(/^file:\/\//, ''));
  return file.split('/').slice(0, 2).join('/');
}

function main(): void {
  const [file, n = '25'] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node bench/cpuprofile-top.ts FILE.cpuprofile [N]');
    process.exitCode = 2;
    return;
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    totalUs += dt;
  });
  const byFunction = new Map<string, number>();
  const byBucket = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const where = url ? `${url.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '')}:${lineNumber + 1}` : '';
    const key = `${functionName || '(anonymous)'} ${where}`.trim();
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const b = bucket(url, functionName);
    byBucket.set(b, (byBucket.get(b) ?? 0) + us);
  }
  const pct = (us: number) => `${((us / totalUs) * 100).toFixed(1).padStart(5)}%`;
  const top = (m: Map<string, number>, count: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, count).map(([k, us]) => `${pct(us)}  ${k}`).join('\n');
  console.log(`${file}: ${(totalUs / 1e6).toFixed(1)} s sampled on the main thread\n`);
  console.log(`self time by function:\n${top(byFunction, Number(n))}\n`);
  console.log(`self time by package / folder:\n${top(byBucket, 15)}`);
}

main();
