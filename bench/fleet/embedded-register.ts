// Registration with the embedded broker: Ground Control alone (every login is checked against
// LMDB, no password file), N satellites created and registered with C calls in flight by the same
// enrol() as bench/fleet. Usage: node bench/fleet/embedded-register.ts [N=1000] [C=16]
// Figures: docs/benchmarks.md, "Registration and the broker".
import { startGroundControl } from '../../test/helpers/groundcontrol.ts';
import { ScriptTeardown } from '../lib/teardown.ts';
import { readMem } from '../lib/proc-stats.ts';
import { enrol } from './stack.ts';
const t = new ScriptTeardown();
const n = Number(process.argv[2] ?? 1000);
const c = Number(process.argv[3] ?? 16);
try {
  const gc = await startGroundControl(t as never, { config: { log: { level: 'info' }, upstream: { url: 'http://127.0.0.1:5000' } } });
  const e = await enrol(gc, n, 1, c, [gc.proc.pid!], (m) => process.stderr.write(m + '\n'));
  console.log(`embedded N=${n} concurrency ${c}: create ${(e.createMs / 1000).toFixed(1)} s, register ${(e.registerMs / 1000).toFixed(1)} s (${(n / (e.registerMs / 1000)).toFixed(0)}/s); cores GC ${e.registerCpu.cores.get(gc.proc.pid!)?.toFixed(2)} other ${e.registerCpu.other.toFixed(2)}; GC RSS ${(readMem(gc.proc.pid!).rssKiB / 1024).toFixed(0)} MiB`);
} finally { await t.run(); }
