// The runtime settings each shipped command runs with: one source for the release wrapper
// (stage.ts writes them into bin/<command>) and for the benchmarks and tests that run the bundle
// "as shipped" (bench/serve.ts, bench/sync.ts, test/build/bundle.test.ts). No imports: the
// benchmarks load this without esbuild.

/** The shipped commands and their bundle entry files. */
export const COMMANDS = { satellite: 'satellite.mjs', groundcontrol: 'groundcontrol.mjs' } as const;
export type Command = keyof typeof COMMANDS;

/**
 * Node flags each command's wrapper runs it with (measured in docs/benchmarks.md, "Memory"): for the
 * satellite a 1 MiB young generation (instead of up to 16 MiB: ~8 MiB off the idle RSS), V8's
 * --optimize-for-size (~20 MiB off the peak under 32 concurrent 1 MiB GETs, req/s unchanged) and
 * --liftoff-only: WebAssembly (only undici's HTTP parser, llhttp) stays on V8's baseline compiler;
 * optimizing it cost ~10 MiB once undici was loaded (sync, proxy, peers) and bought no MB/s.
 * Not --lite-mode: it halves req/s. Ground Control is central and keeps Node's defaults.
 */
export const NODE_FLAGS: Record<Command, readonly string[]> = {
  satellite: ['--max-semi-space-size=1', '--optimize-for-size', '--liftoff-only'],
  groundcontrol: [],
};

/**
 * Environment the wrapper sets when the caller has not (a value set outside wins): glibc malloc
 * tuning, measured in docs/benchmarks.md ("Memory"). MALLOC_ARENA_MAX=2: two arenas instead of
 * one per thread (8 × cores). Not MALLOC_MMAP_THRESHOLD_=131072: it lets RSS return to idle after a
 * load (buffers from 128 KiB up mapped and unmapped), but halved 256 MiB stream MB/s in bench/serve
 * on a quiet machine (docs/benchmarks.md, "Memory"); a board that needs the RSS back more than the
 * MB/s (a Pi's NIC is far slower) sets it in the unit.
 */
export const RUNTIME_ENV: Record<Command, Readonly<Record<string, string>>> = {
  satellite: { MALLOC_ARENA_MAX: '2' },
  groundcontrol: { MALLOC_ARENA_MAX: '2' },
};

/** Environment names the wrapper may set: glibc's MALLOC_* tunables only (shell-safe by construction). */
const ENV_NAME = /^MALLOC_[A-Z_]+$/;
const ENV_VALUE = /^[0-9]+$/;

/** The shell lines that export a command's RUNTIME_ENV, each only when not already set. */
export function wrapperEnvLines(env: Readonly<Record<string, string>>): string {
  return Object.entries(env)
    .map(([name, value]) => {
      if (!ENV_NAME.test(name) || !ENV_VALUE.test(value)) throw new Error(`runtime env ${name}=${value}: only MALLOC_* names with numeric values`);
      return `export ${name}="\${${name}:-${value}}"\n`;
    })
    .join('');
}
