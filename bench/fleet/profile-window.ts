#!/usr/bin/env node
// Where a V8 CPU profile spent one time window: `node bench/fleet/profile-window.ts FILE LAST_S
// [SKIP_END_S] [N]` = the LAST_S seconds before the last sample (minus SKIP_END_S of shutdown).
// Ground Control's whole-process profile (bench/fleet.ts --gc-node-options="--cpu-prof ...") is
// mostly set-up; the rounds are its last seconds (the bench prints when each one ran).
// Prints the top N functions by self time and by inclusive time (a function counted once per sample).
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const [file, lastArg, skipArg = '0', nArg = '30'] = process.argv.slice(2);
if (!file || !lastArg) {
  console.error('usage: node bench/fleet/profile-window.ts FILE.cpuprofile LAST_SECONDS [SKIP_END_SECONDS] [N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] };
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const name = (node: ProfileNode) => {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '').replace(`${process.cwd()}/`, '');
  return `${functionName || '(anonymous)'}${where ? ` ${where}:${lineNumber + 1}` : ''}`;
};

const times: number[] = [];
let clock = profile.startTime;
for (const dt of profile.timeDeltas) times.push((clock += dt));
const end = (times.at(-1) ?? 0) - Number(skipArg) * 1e6;
const start = end - Number(lastArg) * 1e6;
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let totalUs = 0;
profile.samples.forEach((id, i) => {
  if (times[i]! < start || times[i]! > end) return;
  const dt = profile.timeDeltas[i] ?? 0;
  totalUs += dt;
  let node = byId.get(id);
  if (!node) return;
  self.set(name(node), (self.get(name(node)) ?? 0) + dt);
  const seen = new Set<string>();
  for (; node; node = byId.get(parent.get(node.id) ?? -1)) {
    const key = name(node);
    if (seen.has(key)) continue; // recursion: once per sample
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
  }
});
const top = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(nArg))
    .map(([key, us]) => `${((us / totalUs) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`)
    .join('\n');
console.log(`${file}: ${(totalUs / 1e6).toFixed(1)} s sampled on the main thread in the window\n`);
console.log(`self time:\n${top(self)}\n\ninclusive time:\n${top(inclusive)}`);
